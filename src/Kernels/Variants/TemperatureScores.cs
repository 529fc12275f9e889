using System.Runtime.CompilerServices;
using Managed.Kernels.Simd;

namespace Managed.Kernels.Variants;

/// <summary>
/// Softmax temperature (TempScale, C4: softmax(QKᵀ / (√d T))): s * (1 / T). The reciprocal is
/// taken once on the host, so Apply and ApplyRow multiply by the same float; T = 1 is exact
/// attention, T &lt; 1 sharpens. default(TemperatureScore) has no temperature (1 / T = 0 would
/// make every score 0: uniform attention): entry points reject it.
/// </summary>
public readonly struct TemperatureScore : IScoreModifier, IValidated
{
    private readonly float _inverse;

    /// <summary>Temperature <paramref name="temperature"/>: finite and &gt; 0, with 1 / T
    /// finite (a subnormal T overflows it, and 0 * infinity is NaN).</summary>
    public TemperatureScore(float temperature)
    {
        if (!(temperature > 0f) || float.IsInfinity(temperature)
            || !(1f / temperature < float.PositiveInfinity))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature,
                "The temperature must be finite and > 0, with 1 / T finite.");
        _inverse = 1f / temperature;
    }

    /// <summary>The temperature is missing (default: 1 / T = 0) or invalid.</summary>
    public string? ParameterError() => _inverse > 0f && float.IsFinite(_inverse) ? null
        : VariantChecks.Missing(nameof(TemperatureScore), "temperature",
            "missing (1 / T = " + _inverse + ")",
            "a finite temperature > 0", isDefault: _inverse == 0f);

    /// <summary>1 / T</summary>
    public float InverseTemperature => _inverse;

    /// <summary>s * (1 / T)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k) => score * _inverse;

    /// <summary>s * (1 / T), vectorized.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0) =>
        VectorMath.Multiply(scores, _inverse);
}

/// <summary>
/// Query-position-dependent inverse temperature, the log-position term of Selective Attention
/// (S4, ‡: the paper's temperature is a learned function of the query plus a log-position
/// term; only the closed-form position part is implemented): s * τ(q) with
/// τ(q) = a ln(max(q, 0) + 1) + b. (a, b) = (0, 1) is exact attention. Positions before the
/// first key (negative q, bottom-right alignment) use τ(0) = b. b must be &gt; 0: the
/// default (a, b) = (0, 0) would make every score 0 (uniform attention), and entry points
/// reject it.
/// </summary>
public readonly struct LogPositionTemperatureScore : IScoreModifier, IValidated
{
    private readonly float _a, _b;

    /// <summary>τ(q) = <paramref name="a"/> ln(q + 1) + <paramref name="b"/>; both finite,
    /// b &gt; 0.</summary>
    public LogPositionTemperatureScore(float a, float b)
    {
        if (!float.IsFinite(a) || !float.IsFinite(b))
            throw new ArgumentOutOfRangeException(nameof(a), "a and b must be finite.");
        if (!(b > 0f))
            throw new ArgumentOutOfRangeException(nameof(b), b,
                "b (the inverse temperature at position 0) must be > 0.");
        (_a, _b) = (a, b);
    }

    /// <summary>b is missing (default) or not &gt; 0, or a is not finite.</summary>
    public string? ParameterError() => _b > 0f && float.IsFinite(_b) && float.IsFinite(_a) ? null
        : VariantChecks.Missing(nameof(LogPositionTemperatureScore), "b", _b,
            "b > 0 and a finite ((a, b) = (0, 1) is exact attention)",
            isDefault: _a == 0f && _b == 0f);

    /// <summary>τ(q) = a ln(max(q, 0) + 1) + b</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Factor(int q) => _a * MathF.Log((q > 0 ? q : 0) + 1f) + _b;

    /// <summary>s * τ(q)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k) => score * Factor(q);

    /// <summary>τ(q) once per row, then s * τ(q), vectorized.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0) =>
        VectorMath.Multiply(scores, Factor(q));
}
