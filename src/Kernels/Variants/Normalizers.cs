using System.Runtime.CompilerServices;

namespace Managed.Kernels.Variants;

/// <summary>Softmax: w_j = exp(s_j - max) / sum_k exp(s_k - max), the exact attention.</summary>
public readonly struct SoftmaxNormalizer : INormalizer
{
    /// <summary>true</summary>
    public static bool IsSoftmax => true;
    /// <summary>true</summary>
    public static bool DividesBySum => true;
    /// <summary>false</summary>
    public static bool NeedsLogSumExp => false;

    /// <summary>Unused (0).</summary>
    public float RowParameter(int position, float logSumExp) => 0f;

    /// <summary>exp(s) (the kernels never call it: they shift by the running max).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Weight(float score, float rowParameter) => MathF.Exp(score);

    /// <summary>exp(s - lse), the softmax probability.</summary>
    public double ReferenceWeight(double score, int position, double logSumExp) =>
        double.IsNegativeInfinity(score) ? 0 : Math.Exp(score - logSumExp);
}

/// <summary>
/// Sigmoid attention (Ramapuram et al. 2024, FlashSigmoid; catalog S2): w_j = sigma(s_j + b),
/// O = sum_j w_j v_j with no row normalization. The paper recommends b = -ln(n) for n keys
/// (<see cref="ForSequence"/>). Rows do not sum to 1. default(SigmoidNormalizer) is b = 0:
/// plain sigmoid attention, a valid normalizer.
/// </summary>
public readonly struct SigmoidNormalizer : INormalizer
{
    private readonly float _bias;

    /// <summary>Sigmoid attention with bias <paramref name="bias"/> (finite).</summary>
    public SigmoidNormalizer(float bias)
    {
        if (!float.IsFinite(bias)) throw new ArgumentOutOfRangeException(nameof(bias), bias, "The bias must be finite.");
        _bias = bias;
    }

    /// <summary>The paper's bias b = -ln(<paramref name="keys"/>).</summary>
    public static SigmoidNormalizer ForSequence(int keys)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keys);
        return new(-MathF.Log(keys));
    }

    /// <summary>The bias b.</summary>
    public float Bias => _bias;

    /// <summary>false</summary>
    public static bool IsSoftmax => false;
    /// <summary>false</summary>
    public static bool DividesBySum => false;
    /// <summary>false</summary>
    public static bool NeedsLogSumExp => false;

    /// <summary>Unused (0).</summary>
    public float RowParameter(int position, float logSumExp) => 0f;

    /// <summary>1 / (1 + exp(-(s + b))); -infinity gives exactly 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Weight(float score, float rowParameter) => 1f / (1f + MathF.Exp(-(score + _bias)));

    /// <summary>1 / (1 + exp(-(s + b))) in double.</summary>
    public double ReferenceWeight(double score, int position, double logSumExp) =>
        1.0 / (1.0 + Math.Exp(-(score + _bias)));
}

/// <summary>
/// Softplus attention with length scaling and re-weighting (catalog S3, LSSA; definition as
/// implemented): w_j = softplus(kappa_i s_j)^p, l1-normalized over the row, with
/// kappa_i = max(1, ln(max(i + 1, 1)) / ln(n_train)) for the query at position i (the logits grow like
/// log n past the training length n_train, for entropy invariance; kappa = 1 within it) and a
/// re-weighting power p &gt;= 1 (p = 1: none) that strengthens large weights.
/// softplus(x) = max(x, 0) + ln(1 + exp(-|x|)). Rows sum to 1. There is no running max to
/// shift by, so weights of logits below about -87 / p underflow to 0 in fp32: a row whose
/// every logit is that low returns zeros and -infinity, like a row with no allowed key.
/// default(SoftplusNormalizer) is plain softplus (kappa = 1, p = 1), a valid normalizer.
/// </summary>
public readonly struct SoftplusNormalizer : INormalizer
{
    // Stored so that default(SoftplusNormalizer) is plain softplus (kappa = 1, p = 1).
    private readonly float _inverseLogTrain, _powerMinusOne;

    /// <summary>Softplus attention trained at <paramref name="trainLength"/> tokens (&gt;= 2),
    /// re-weighting power <paramref name="power"/> (&gt;= 1).</summary>
    public SoftplusNormalizer(int trainLength, float power = 1f)
    {
        if (trainLength < 2)
            throw new ArgumentOutOfRangeException(nameof(trainLength), trainLength, "The training length must be >= 2.");
        if (!(power >= 1f) || float.IsInfinity(power))
            throw new ArgumentOutOfRangeException(nameof(power), power, "The power must be finite and >= 1.");
        _inverseLogTrain = 1f / MathF.Log(trainLength);
        _powerMinusOne = power - 1f;
    }

    /// <summary>false</summary>
    public static bool IsSoftmax => false;
    /// <summary>true</summary>
    public static bool DividesBySum => true;
    /// <summary>false</summary>
    public static bool NeedsLogSumExp => false;

    /// <summary>kappa_i = max(1, ln(i + 1) / ln(n_train)); 1 for a position before the first
    /// key (i &lt; 0, a query of a bottom-right aligned block longer than the keys).</summary>
    public float RowParameter(int position, float logSumExp) =>
        MathF.Max(1f, MathF.Log(MathF.Max(position + 1f, 1f)) * _inverseLogTrain);

    /// <summary>softplus(kappa s)^p; -infinity gives 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Weight(float score, float rowParameter)
    {
        float x = rowParameter * score, e = MathF.Exp(-MathF.Abs(x)), u = 1f + e;
        // ln(1 + e) with e's low bits kept (Goldberg): ln(u) e / (u - 1), u = 1 + e rounded.
        float sp = MathF.Max(x, 0f) + (u == 1f ? e : MathF.Log(u) * (e / (u - 1f)));
        return _powerMinusOne == 0f ? sp : MathF.Pow(sp, 1f + _powerMinusOne);
    }

    /// <summary>softplus(kappa s)^p in double, kappa from the position.</summary>
    public double ReferenceWeight(double score, int position, double logSumExp)
    {
        if (double.IsNegativeInfinity(score)) return 0;
        double kappa = Math.Max(1.0, Math.Log(Math.Max(position + 1.0, 1.0)) * _inverseLogTrain);
        double x = kappa * score, e = Math.Exp(-Math.Abs(x));
        // ln(1 + e) by its series below 1e-4: 1 + e rounds away e's low bits in double too.
        double sp = Math.Max(x, 0) + (e < 1e-4 ? e * (1 - e * (0.5 - e / 3)) : Math.Log(1 + e));
        return Math.Pow(sp, 1.0 + _powerMinusOne);
    }
}

/// <summary>
/// Clipped softmax (Bondarenko et al. 2023, catalog S1): w_j = clip((zeta - gamma) p_j + gamma,
/// 0, 1) with p_j the softmax probability, zeta &gt;= 1 and gamma &lt;= 0 (exact 0 and 1 are
/// reachable with finite logits); O = sum_j w_j v_j, no renormalization. p_j needs the row's
/// log-sum-exp, so the kernel runs twice (softmax for it, then this). zeta = 1, gamma = 0 is
/// softmax; so is default(ClippedSoftmaxNormalizer).
/// </summary>
public readonly struct ClippedSoftmaxNormalizer : INormalizer
{
    // Stored so that default(ClippedSoftmaxNormalizer) is zeta = 1, gamma = 0: softmax.
    private readonly float _zetaMinusOne, _gamma;

    /// <summary>zeta - gamma, the factor on p (1 for the default, softmax).</summary>
    public float Stretch => 1f + _zetaMinusOne - _gamma;

    /// <summary>Clipped softmax with stretch factors zeta = <paramref name="zeta"/> &gt;= 1 and
    /// gamma = <paramref name="gamma"/> &lt;= 0.</summary>
    public ClippedSoftmaxNormalizer(float zeta, float gamma)
    {
        if (!(zeta >= 1f) || float.IsInfinity(zeta))
            throw new ArgumentOutOfRangeException(nameof(zeta), zeta, "zeta must be finite and >= 1.");
        if (!(gamma <= 0f) || float.IsInfinity(gamma))
            throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "gamma must be finite and <= 0.");
        _zetaMinusOne = zeta - 1f;
        _gamma = gamma;
    }

    /// <summary>false</summary>
    public static bool IsSoftmax => false;
    /// <summary>false</summary>
    public static bool DividesBySum => false;
    /// <summary>true</summary>
    public static bool NeedsLogSumExp => true;

    /// <summary>The row's softmax log-sum-exp.</summary>
    public float RowParameter(int position, float logSumExp) => logSumExp;

    /// <summary>clip((zeta - gamma) exp(s - lse) + gamma, 0, 1); -infinity gives 0 (gamma &lt;= 0),
    /// NaN (a NaN score, or the NaN log-sum-exp of a row with a +infinity logit) gives NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Weight(float score, float rowParameter) =>
        score == float.NegativeInfinity ? 0f
            : Clip(Stretch * MathF.Exp(score - rowParameter) + _gamma);

    // Compares, not MathF.Min/Max: GPU min/max return the other operand for NaN (PTX max.f32).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Clip(float w) => w > 1f ? 1f : w < 0f ? 0f : w;

    /// <summary>clip((zeta - gamma) p + gamma, 0, 1) in double.</summary>
    public double ReferenceWeight(double score, int position, double logSumExp) =>
        double.IsNegativeInfinity(score) ? 0
            : Math.Clamp((double)Stretch * Math.Exp(score - logSumExp) + _gamma, 0, 1);
}
