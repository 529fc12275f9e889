using Managed.Kernels.Variants;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// phi(x) = scale (elu(x) + 1) elementwise, F = dim: MALA's map (<see cref="MalaAttention"/>).
/// The authors' code maps Q and K by elu + 1 and multiplies both the normalizer
/// phi(q) . mean phi(k) and the product phi(q) S by d^(-1/2); folding that factor into the
/// queries gives their output exactly: queries <see cref="MalaQuery"/>(d), keys
/// <see cref="Unscaled"/>. A default instance (scale 0) is rejected.
/// </summary>
/// <param name="scale">The positive, finite factor.</param>
public readonly struct ScaledEluPlusOneMap(float scale) : IFeatureMap
{
    private readonly float _scale = scale;

    /// <summary>The factor.</summary>
    public float Scale => _scale;

    /// <summary>MALA's query map: scale d^(-1/2) for rows of <paramref name="dim"/>.</summary>
    public static ScaledEluPlusOneMap MalaQuery(int dim) => new(1f / MathF.Sqrt(dim));

    /// <summary>Plain elu + 1 (scale 1): MALA's key map.</summary>
    public static ScaledEluPlusOneMap Unscaled => new(1f);

    /// <inheritdoc/>
    public int Features(int dim) => dim;

    /// <inheritdoc/>
    public float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float>
    {
        float v = x[offset + f];
        return _scale * (v > 0f ? v + 1f : MathF.Exp(v));
    }

    /// <inheritdoc/>
    public string? ParameterError(int dim, int heads) =>
        _scale > 0f && float.IsFinite(_scale) ? null
            : $"ScaledEluPlusOneMap: scale = {_scale}; expected a positive finite factor "
              + "(a default instance has none).";
}

/// <summary>
/// phi(x) = scale x elementwise, F = dim: InLine's map (<see cref="InLineAttention"/>). The
/// authors' code (LeapLabTHU/InLine) uses Q and K as they are (the identity kernel: InLine's
/// subtractive normalization needs no positivity) and scales the query side by d^(-1/2) / N
/// ("can be equivalently achieved by scaling phi(Q)"): queries <see cref="InLineQuery"/>(d, N),
/// keys <see cref="Identity"/>. A default instance (scale 0) is rejected.
/// </summary>
/// <param name="scale">The non-zero, finite factor.</param>
public readonly struct ScaledIdentityMap(float scale) : IFeatureMap
{
    private readonly float _scale = scale;

    /// <summary>The factor.</summary>
    public float Scale => _scale;

    /// <summary>InLine's query map: scale d^(-1/2) / N for rows of <paramref name="dim"/> in
    /// sequences of <paramref name="length"/> tokens.</summary>
    public static ScaledIdentityMap InLineQuery(int dim, int length) =>
        new(1f / (MathF.Sqrt(dim) * length));

    /// <summary>phi(x) = x: InLine's key map.</summary>
    public static ScaledIdentityMap Identity => new(1f);

    /// <inheritdoc/>
    public int Features(int dim) => dim;

    /// <inheritdoc/>
    public float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float> => _scale * x[offset + f];

    /// <inheritdoc/>
    public string? ParameterError(int dim, int heads) =>
        _scale != 0f && float.IsFinite(_scale) ? null
            : $"ScaledIdentityMap: scale = {_scale}; expected a non-zero finite factor "
              + "(a default instance has none).";
}
