using Managed.Kernels.Variants;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// Fastmax's feature map (Gerami et al., "FAST: Factorizable Attention for Speeding up
/// Transformers"): a row x of d elements is normalized, x~ = (x - mean(x)) / |x - mean(x)|
/// (centered over its d elements, then unit length; a constant row, whose centered norm is 0,
/// becomes x~ = 0), and mapped to the monomials of the truncated exponential:
/// order 1, phi(x) = [1, x~], F = 1 + d; order 2, phi(x) = [1, x~, vec(x~ x~^T) / sqrt(2)],
/// F = 1 + d + d^2. Then phi(q) . phi(k) = f(s) with s = q~ . k~ in [-1, 1] and
/// f(s) = 1 + s (order 1) or 1 + s + s^2 / 2 (order 2), the paper's score polynomial: the
/// factorization that lets normalized attention run in O(N) (f is non-negative on [-1, 1],
/// so the normalized weights are too).
/// <para>
/// The reading taken: the paper normalizes each query and key row (centered, unit norm) so
/// that |s| &lt;= 1; its released Python code instead divides every centered row of a head by
/// the largest row norm of that head (and its CUDA kernels skip the centering), which also
/// bounds |s| by 1 but mixes positions, so a causal call would read the norms of future
/// tokens. The per-row form is used here; the code's temperature and dropout are left out
/// (a temperature is a scale of K before this map).
/// </para>
/// </summary>
public readonly struct CenteredPolynomialMap(int order) : IFeatureMap, IValidated
{
    private readonly int _order = order;

    /// <summary>p, the order of the score polynomial: 1 or 2.</summary>
    public int Order => _order;

    /// <summary>F for rows of <paramref name="dim"/> elements: 1 + d (order 1) or
    /// 1 + d + d^2 (order 2).</summary>
    public int Features(int dim) => _order == 1 ? 1 + dim : 1 + dim + dim * dim;

    /// <inheritdoc/>
    public float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float>
    {
        if (f == 0) return 1f;
        float mean = 0f;
        for (int i = 0; i < dim; i++) mean += x[offset + i];
        mean /= dim;
        float norm = 0f;
        for (int i = 0; i < dim; i++)
        {
            float c = x[offset + i] - mean;
            norm += c * c;
        }
        // A constant row has no direction: x~ = 0, so it scores f(0) = 1 with every key.
        float inv = norm > 0f ? 1f / MathF.Sqrt(norm) : 0f;
        if (f <= dim) return (x[offset + f - 1] - mean) * inv;
        int pair = f - 1 - dim, a = pair / dim, b = pair - a * dim;
        return (x[offset + a] - mean) * inv * ((x[offset + b] - mean) * inv)
            * 0.70710678118654752f; // 1 / sqrt(2)
    }

    /// <inheritdoc/>
    public string? ParameterError() =>
        _order is 1 or 2 ? null : VariantChecks.Missing(nameof(CenteredPolynomialMap), "order", _order,
            "1 or 2", _order == 0);

    /// <inheritdoc/>
    public string? ParameterError(int dim, int heads) =>
        ParameterError() ?? (_order == 2 && dim > 4096
            ? $"CenteredPolynomialMap: dim = {dim}; expected at most 4096 at order 2 (F = 1 + d + d^2)."
            : null);
}
