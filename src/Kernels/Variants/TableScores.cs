using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>
/// Relative-position bias from a learned table (Shaw et al. 2018 with clipping; T5 and Swin use
/// such tables): s + bias[h, clamp(k - q, -R, R) + R], a (heads, 2R + 1) table of floats; heads
/// is 1 (shared) or the query heads. A zero table is exact attention. A default instance has
/// no table (0 heads): entry points reject it.
/// </summary>
public readonly struct RelativeBiasScore<TBias> : IScoreModifier, IShapeDependent, IValidated
    where TBias : struct, ITable<float>
{
    private readonly TBias _bias;
    private readonly int _heads, _radius;

    /// <summary>Bias table <paramref name="bias"/> of (<paramref name="heads"/>, 2 radius + 1).</summary>
    public RelativeBiasScore(TBias bias, int heads, int radius)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegative(radius);
        _bias = bias;
        _heads = heads;
        _radius = radius;
    }

    /// <summary>s + bias[h, clamp(k - q, -R, R) + R]</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k)
    {
        // k - q in long: positions may be far apart, and the clamp must see the true distance.
        long distance = Math.Min(Math.Max((long)k - q, -_radius), _radius); // no Math.Clamp: it throws
        return score + _bias[(_heads == 1 ? 0 : head) * (2 * _radius + 1) + (int)distance + _radius];
    }

    /// <summary>Row form: the same sum per element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0)
    {
        for (int j = 0; j < scores.Length; j++) scores[j] = Apply(scores[j], batch, head, q, k0 + j);
    }

    /// <summary>The table is missing (default: 0 heads).</summary>
    public string? ParameterError() => _heads >= 1 && _radius >= 0 ? null
        : VariantChecks.Missing("RelativeBiasScore", "heads", _heads,
            "a table of 1 or the query heads",
            isDefault: _heads == 0 && _radius == 0);

    /// <summary>The table must be (1 or heads, 2R + 1).</summary>
    public void Validate(AttentionShape shape)
    {
        if (_heads != 1 && _heads != shape.Heads)
            throw new ArgumentException(
                $"RelativeBiasScore has {_heads} table heads; expected 1 or the call's {shape.Heads} heads.", nameof(shape));
        long need = (long)_heads * (2 * _radius + 1);
        if (_bias.Length < need)
            throw new ArgumentException(
                $"RelativeBiasScore table holds {_bias.Length} floats; {_heads} x {2 * _radius + 1} = {need} are needed.", nameof(shape));
    }
}

/// <summary>
/// Per-query temperature from data (Selective Attention's query-dependent temperature, catalog
/// S4; TempScale, C4): tau[b, h, p] s for the query at position p, a (batch, heads, positions)
/// table; positions outside [0, positions) use the nearest entry. All ones is exact attention.
/// A default instance has no table (0 heads and positions): entry points reject it.
/// </summary>
public readonly struct QueryTemperatureScore<TTemperature> : IScoreModifier, IShapeDependent,
    IValidated
    where TTemperature : struct, ITable<float>
{
    private readonly TTemperature _tau;
    private readonly int _heads, _positions;

    /// <summary>Temperatures <paramref name="tau"/> of (batch, <paramref name="heads"/>,
    /// <paramref name="positions"/>).</summary>
    public QueryTemperatureScore(TTemperature tau, int heads, int positions)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(positions);
        _tau = tau;
        _heads = heads;
        _positions = positions;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private float Tau(int batch, int head, int q) =>
        _tau[(batch * _heads + head) * _positions + Math.Min(Math.Max(q, 0), _positions - 1)];

    /// <summary>tau[b, h, q] s</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k) => Tau(batch, head, q) * score;

    /// <summary>Row form: one temperature per row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0)
    {
        float tau = Tau(batch, head, q);
        for (int j = 0; j < scores.Length; j++) scores[j] *= tau;
    }

    /// <summary>The table is missing (default: 0 heads or positions).</summary>
    public string? ParameterError() => _heads >= 1 && _positions >= 1 ? null
        : VariantChecks.Missing("QueryTemperatureScore", "positions", _positions,
            "a (batch, heads, positions) table with heads and positions >= 1",
            isDefault: _heads == 0 && _positions == 0);

    /// <summary>The table must be (batch, heads, positions) for the call's batch and heads.</summary>
    public void Validate(AttentionShape shape)
    {
        if (_heads != shape.Heads)
            throw new ArgumentException(
                $"QueryTemperatureScore has {_heads} heads; the call has {shape.Heads}.", nameof(shape));
        long need = (long)shape.Batch * _heads * _positions;
        if (_tau.Length < need)
            throw new ArgumentException(
                $"QueryTemperatureScore table holds {_tau.Length} floats; batch {shape.Batch} x {_heads} x {_positions} = {need} are needed.", nameof(shape));
    }
}
