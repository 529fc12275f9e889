namespace Managed.Models;

/// <summary>The RoPE variants of transformers' <c>modeling_rope_utils</c> that are supported.
/// </summary>
public enum RopeType : byte
{
    /// <summary>"default": inv_freq[i] = θ^(−2i/d).</summary>
    Default,
    /// <summary>"linear" (position interpolation): inv_freq / factor.</summary>
    Linear,
    /// <summary>"dynamic" (dynamic NTK): θ' = θ·(factor·L/Lmax − (factor − 1))^(d/(d−2)) with
    /// L = max(sequence length, Lmax).</summary>
    Dynamic,
    /// <summary>"yarn": a ramp between interpolated and extrapolated frequencies, plus an
    /// attention factor on cos and sin.</summary>
    Yarn,
    /// <summary>"llama3": Llama 3.1's smoothed per-wavelength scaling.</summary>
    Llama3,
}

/// <summary>How <see cref="RopeParameters.CreateTable"/> rounds.</summary>
public enum RopePrecision : byte
{
    /// <summary>As transformers' rotary embedding does in its forward (which runs in fp32
    /// even for an fp64 model): inv_freq rounded to fp32, angle = fp32(inv_freq × position),
    /// cos and sin of that fp32 angle (evaluated in double, rounded to fp32), then × the
    /// attention scaling in fp32.</summary>
    HuggingFace,
    /// <summary>Everything in double, rounded to fp32 once at the end:
    /// fp32(cos(inv_freq × position) × scaling).</summary>
    Double,
}

/// <summary>
/// The RoPE of one attention layer, normalized from either config form (transformers 4.x
/// <c>rope_theta</c> + <c>rope_scaling</c>, or 5.x <c>rope_parameters</c>). Computes the
/// inverse frequencies and the attention scaling as transformers'
/// <c>_compute_*_parameters</c> functions do, in double precision (transformers computes them
/// in fp32: the two agree to about one fp32 ulp). Fields a type does not use are ignored.
/// </summary>
public sealed record RopeParameters
{
    /// <summary>The variant.</summary>
    public required RopeType Type { get; init; }

    /// <summary>rope_theta: the base θ.</summary>
    public required double Theta { get; init; }

    /// <summary>d, the rotated dims: the head dim (even).</summary>
    public required int Dim { get; init; }

    /// <summary>The config's max_position_embeddings (dynamic: Lmax).</summary>
    public required int MaxPositionEmbeddings { get; init; }

    /// <summary>factor (linear, dynamic, yarn, llama3); 1 for default.</summary>
    public double Factor { get; init; } = 1;

    /// <summary>original_max_position_embeddings (yarn, llama3): the pre-training context.
    /// </summary>
    public int OriginalMaxPositionEmbeddings { get; init; }

    /// <summary>llama3 low_freq_factor.</summary>
    public double LowFreqFactor { get; init; } = 1;

    /// <summary>llama3 high_freq_factor.</summary>
    public double HighFreqFactor { get; init; } = 4;

    /// <summary>yarn beta_fast (transformers: a missing or zero value means 32).</summary>
    public double BetaFast { get; init; } = 32;

    /// <summary>yarn beta_slow (transformers: a missing or zero value means 1).</summary>
    public double BetaSlow { get; init; } = 1;

    /// <summary>yarn attention_factor; null: derived from factor, mscale and mscale_all_dim.
    /// </summary>
    public double? AttentionFactor { get; init; }

    /// <summary>yarn mscale (null when absent).</summary>
    public double? Mscale { get; init; }

    /// <summary>yarn mscale_all_dim (null when absent).</summary>
    public double? MscaleAllDim { get; init; }

    /// <summary>yarn truncate: floor/ceil the correction range (default true).</summary>
    public bool Truncate { get; init; } = true;

    /// <summary>The factor cos and sin are multiplied by: yarn's attention factor
    /// (attention_factor, else get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
    /// when both are non-zero, else get_mscale(factor), with get_mscale(s, m) = 0.1·m·ln s + 1
    /// for s &gt; 1 and 1 otherwise); 1 for every other type.</summary>
    public double AttentionScaling => Type != RopeType.Yarn ? 1.0
        : AttentionFactor ?? (Mscale is { } m && m != 0 && MscaleAllDim is { } a && a != 0
            ? GetMscale(Factor, m) / GetMscale(Factor, a)
            : GetMscale(Factor, 1));

    private static double GetMscale(double scale, double mscale) =>
        scale <= 1 ? 1.0 : 0.1 * mscale * Math.Log(scale) + 1.0;

    /// <summary>The d/2 inverse frequencies. <paramref name="sequenceLength"/> matters only for
    /// <see cref="RopeType.Dynamic"/>: transformers recomputes them for L = max(sequence
    /// length, Lmax), where its sequence length is the largest position seen so far + 1 (it
    /// only grows, and falls back to Lmax when a shorter sequence comes after a longer one).
    /// </summary>
    public double[] InverseFrequencies(int sequenceLength = 0)
    {
        int half = Dim / 2;
        var inv = new double[half];
        switch (Type)
        {
            case RopeType.Default:
                for (int i = 0; i < half; i++)
                    inv[i] = 1.0 / Math.Pow(Theta, 2.0 * i / Dim);
                break;
            case RopeType.Linear:
                for (int i = 0; i < half; i++)
                    inv[i] = 1.0 / Math.Pow(Theta, 2.0 * i / Dim) / Factor;
                break;
            case RopeType.Dynamic:
            {
                double length = Math.Max(sequenceLength, MaxPositionEmbeddings);
                double theta = Theta * Math.Pow(
                    Factor * length / MaxPositionEmbeddings - (Factor - 1),
                    (double)Dim / (Dim - 2));
                for (int i = 0; i < half; i++)
                    inv[i] = 1.0 / Math.Pow(theta, 2.0 * i / Dim);
                break;
            }
            case RopeType.Yarn:
                Yarn(inv);
                break;
            case RopeType.Llama3:
                Llama3(inv);
                break;
            default:
                throw new InvalidOperationException($"Unknown RoPE type {Type}.");
        }
        return inv;
    }

    private void Yarn(double[] inv)
    {
        int half = Dim / 2;
        // The dim index whose frequency turns `rotations` times over the original context.
        double CorrectionDim(double rotations) =>
            Dim * Math.Log(OriginalMaxPositionEmbeddings / (rotations * 2 * Math.PI))
            / (2 * Math.Log(Theta));
        double low = CorrectionDim(BetaFast), high = CorrectionDim(BetaSlow);
        if (Truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        low = Math.Max(low, 0);
        high = Math.Min(high, Dim - 1);
        if (low == high)
            high += 0.001;      // transformers' guard against a zero-width ramp
        for (int i = 0; i < half; i++)
        {
            double posFreq = Math.Pow(Theta, 2.0 * i / Dim);
            double ramp = Math.Clamp((i - low) / (high - low), 0, 1);
            double extrapolation = 1 - ramp;
            inv[i] = 1.0 / (Factor * posFreq) * (1 - extrapolation)
                + 1.0 / posFreq * extrapolation;
        }
    }

    private void Llama3(double[] inv)
    {
        int half = Dim / 2;
        double lowFreqWavelength = OriginalMaxPositionEmbeddings / LowFreqFactor;
        double highFreqWavelength = OriginalMaxPositionEmbeddings / HighFreqFactor;
        for (int i = 0; i < half; i++)
        {
            double f = 1.0 / Math.Pow(Theta, 2.0 * i / Dim);
            double wavelength = 2 * Math.PI / f;
            if (wavelength < highFreqWavelength)
                inv[i] = f;
            else if (wavelength > lowFreqWavelength)
                inv[i] = f / Factor;
            else
            {
                double smooth = (OriginalMaxPositionEmbeddings / wavelength - LowFreqFactor)
                    / (HighFreqFactor - LowFreqFactor);
                inv[i] = (1 - smooth) * f / Factor + smooth * f;
            }
        }
    }

    /// <summary>The cos and sin of positions [0, <paramref name="positions"/>), scaled by
    /// <see cref="AttentionScaling"/>, rounded as <paramref name="precision"/> says.
    /// <paramref name="sequenceLength"/> is passed to <see cref="InverseFrequencies"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">positions is negative.</exception>
    public RopeTable CreateTable(int positions, int sequenceLength = 0,
        RopePrecision precision = RopePrecision.HuggingFace)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(positions);
        var inv = InverseFrequencies(sequenceLength);
        int half = inv.Length;
        double scaling = AttentionScaling;
        float scaling32 = (float)scaling;
        var cos = new float[(long)positions * half];  // (positions, dim / 2)
        var sin = new float[(long)positions * half];  // (positions, dim / 2)
        for (int p = 0; p < positions; p++)
        {
            for (int i = 0; i < half; i++)
            {
                int at = p * half + i;
                if (precision == RopePrecision.HuggingFace)
                {
                    float angle = (float)inv[i] * (float)p;
                    cos[at] = (float)Math.Cos(angle) * scaling32;
                    sin[at] = (float)Math.Sin(angle) * scaling32;
                }
                else
                {
                    double angle = inv[i] * p;
                    cos[at] = (float)(Math.Cos(angle) * scaling);
                    sin[at] = (float)(Math.Sin(angle) * scaling);
                }
            }
        }
        return new RopeTable(Dim, positions, cos, sin);
    }
}
