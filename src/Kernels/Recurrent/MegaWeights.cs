namespace Managed.Kernels.Recurrent;

/// <summary>
/// The size of one Mega layer call: x and output (batch, length, dim); zDim the shared
/// query/key dim (the paper's z), hDim the value and gate dim (the paper's v), emaDims the
/// EMA's expansion h per channel.
/// </summary>
public readonly record struct MegaShape(int Batch, int Length, int Dim, int ZDim, int HDim,
    int EmaDims)
{
    /// <summary>batch * length * dim</summary>
    public long SequenceLength => (long)Batch * Length * Dim;

    /// <summary>batch * length: the rows of every projection.</summary>
    public int Rows => Batch * Length;

    /// <summary>The EMA's shape.</summary>
    public EmaShape Ema => new(Batch, Length, Dim, EmaDims);

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not
    /// valid.</summary>
    public void Validate(string paramName = "shape")
    {
        Positive(Batch, nameof(Batch), paramName);
        Positive(Length, nameof(Length), paramName);
        Positive(Dim, nameof(Dim), paramName);
        Positive(ZDim, nameof(ZDim), paramName);
        Positive(HDim, nameof(HDim), paramName);
        Positive(EmaDims, nameof(EmaDims), paramName);
        if ((long)Batch * Length * Math.Max(Math.Max(Dim, ZDim), HDim) > Array.MaxLength)
            throw new ArgumentException(
                $"{this}: batch x length x the largest dim must fit an array.", paramName);
    }

    private static void Positive(int value, string dim, string paramName)
    {
        if (value <= 0)
            throw new ArgumentException($"{dim} must be positive, got {value}.", paramName);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} N={Length} D={Dim} z={ZDim} v={HDim} h={EmaDims}";
}

/// <summary>
/// The learned parameters of one Mega layer (Ma et al., eq. 2-4 and 6-9; the names are the
/// paper's). Matrices are stored as nn.Linear stores them, (out, in). The released code's one
/// mx_proj (dim -> dim + z + v + dim) is split here into <see cref="PhiWeight"/>,
/// <see cref="ZWeight"/>, <see cref="GammaWeight"/> and <see cref="HxWeight"/>; its h_proj is
/// <see cref="HuWeight"/> (U_h) with its bias folded into <see cref="HxBias"/>.
/// </summary>
public sealed class MegaWeights
{
    /// <summary>EMA damping factors alpha (dim, emaDims), in (0, 1].</summary>
    public required float[] EmaAlpha { get; init; }
    /// <summary>EMA damping factors delta (dim, emaDims), in (0, 1].</summary>
    public required float[] EmaDelta { get; init; }
    /// <summary>EMA expansion beta (dim, emaDims).</summary>
    public required float[] EmaBeta { get; init; }
    /// <summary>EMA projection eta (dim, emaDims).</summary>
    public required float[] EmaEta { get; init; }
    /// <summary>EMA residual omega (dim).</summary>
    public required float[] EmaOmega { get; init; }

    /// <summary>W_v (hDim, dim): V = SiLU(X W_v + b_v).</summary>
    public required float[] ValueWeight { get; init; }
    /// <summary>b_v (hDim).</summary>
    public required float[] ValueBias { get; init; }
    /// <summary>W_z (zDim, dim): Z = SiLU(X' W_z + b_z).</summary>
    public required float[] ZWeight { get; init; }
    /// <summary>b_z (zDim).</summary>
    public required float[] ZBias { get; init; }
    /// <summary>(kappa_q, kappa_k) scales (2, zDim): Q = kappa_q (.) Z + mu_q.</summary>
    public required float[] QkScale { get; init; }
    /// <summary>(mu_q, mu_k) offsets (2, zDim).</summary>
    public required float[] QkOffset { get; init; }
    /// <summary>Relative position bias b_rel (2 R + 1), entry R + (k - q) for key k of query
    /// q; R &gt;= chunk - 1.</summary>
    public required float[] RelativeBias { get; init; }

    /// <summary>W_gamma (hDim, dim): the reset gate gamma = SiLU(X' W_gamma + b_gamma).
    /// </summary>
    public required float[] GammaWeight { get; init; }
    /// <summary>b_gamma (hDim).</summary>
    public required float[] GammaBias { get; init; }
    /// <summary>W_phi (dim, dim): the update gate phi = sigmoid(X' W_phi + b_phi).</summary>
    public required float[] PhiWeight { get; init; }
    /// <summary>b_phi (dim).</summary>
    public required float[] PhiBias { get; init; }
    /// <summary>W_h (dim, dim): H = SiLU(X' W_h + (gamma (.) O) U_h + b_h).</summary>
    public required float[] HxWeight { get; init; }
    /// <summary>b_h (dim).</summary>
    public required float[] HxBias { get; init; }
    /// <summary>U_h (dim, hDim).</summary>
    public required float[] HuWeight { get; init; }

    /// <summary>The bias radius R = (length of <see cref="RelativeBias"/> - 1) / 2.</summary>
    public int BiasRadius => (RelativeBias.Length - 1) / 2;

    /// <summary>Throws <see cref="ArgumentException"/> (parameter "weights") naming the
    /// tensor whose length disagrees with <paramref name="shape"/>, a non-finite entry, a
    /// damping factor outside (0, 1], or a bias table shorter than 2 (chunk - 1) + 1.
    /// </summary>
    public void Validate(MegaShape shape, int chunk)
    {
        int d = shape.Dim, z = shape.ZDim, v = shape.HDim, m = shape.EmaDims;
        Check(EmaAlpha, (long)d * m, nameof(EmaAlpha), $"dim {d} x emaDims {m}");
        Check(EmaDelta, (long)d * m, nameof(EmaDelta), $"dim {d} x emaDims {m}");
        Check(EmaBeta, (long)d * m, nameof(EmaBeta), $"dim {d} x emaDims {m}");
        Check(EmaEta, (long)d * m, nameof(EmaEta), $"dim {d} x emaDims {m}");
        Check(EmaOmega, d, nameof(EmaOmega), $"dim {d}");
        Check(ValueWeight, (long)v * d, nameof(ValueWeight), $"hDim {v} x dim {d}");
        Check(ValueBias, v, nameof(ValueBias), $"hDim {v}");
        Check(ZWeight, (long)z * d, nameof(ZWeight), $"zDim {z} x dim {d}");
        Check(ZBias, z, nameof(ZBias), $"zDim {z}");
        Check(QkScale, 2L * z, nameof(QkScale), $"2 x zDim {z}");
        Check(QkOffset, 2L * z, nameof(QkOffset), $"2 x zDim {z}");
        Check(GammaWeight, (long)v * d, nameof(GammaWeight), $"hDim {v} x dim {d}");
        Check(GammaBias, v, nameof(GammaBias), $"hDim {v}");
        Check(PhiWeight, (long)d * d, nameof(PhiWeight), $"dim {d} x dim {d}");
        Check(PhiBias, d, nameof(PhiBias), $"dim {d}");
        Check(HxWeight, (long)d * d, nameof(HxWeight), $"dim {d} x dim {d}");
        Check(HxBias, d, nameof(HxBias), $"dim {d}");
        Check(HuWeight, (long)d * v, nameof(HuWeight), $"dim {d} x hDim {v}");
        int span = Math.Min(chunk, shape.Length);
        if (RelativeBias is null || RelativeBias.Length % 2 == 0
            || RelativeBias.Length < 2 * span - 1)
            throw new ArgumentException($"RelativeBias has {RelativeBias?.Length ?? 0} "
                + $"elements; expected an odd length 2 R + 1 >= {2 * span - 1} (R >= the "
                + $"chunk's span {span} - 1).", "weights");
        MultiDimensionalEma.CheckFinite(RelativeBias, "weights");
        foreach (var (a, name) in new[] { (EmaAlpha, nameof(EmaAlpha)),
            (EmaDelta, nameof(EmaDelta)) })
            for (int i = 0; i < a.Length; i++)
                if (!(a[i] > 0f && a[i] <= 1f))
                    throw new ArgumentException(
                        $"{name}[{i}] is {a[i]}; expected a damping factor in (0, 1].",
                        "weights");
    }

    private static void Check(float[] a, long expected, string name, string layout)
    {
        if (a is null || a.Length != expected)
            throw new ArgumentException($"weights.{name} has {a?.Length ?? 0} elements; "
                + $"expected {expected} = {layout}.", "weights");
        for (int i = 0; i < a.Length; i++)
            if (!float.IsFinite(a[i]))
                throw new ArgumentException($"weights.{name}[{i}] is {a[i]}; expected finite.",
                    "weights");
    }
}
