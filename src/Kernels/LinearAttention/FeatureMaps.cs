using Managed.Kernels.Variants;

namespace Managed.Kernels.LinearAttention;

/// <summary>phi(x) = elu(x) + 1 elementwise (Katharopoulos et al., "Transformers are RNNs"):
/// positive, F = dim.</summary>
public readonly struct EluPlusOneMap : IFeatureMap
{
    /// <inheritdoc/>
    public int Features(int dim) => dim;

    /// <inheritdoc/>
    public float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float>
    {
        float v = x[offset + f];
        return v > 0f ? v + 1f : MathF.Exp(v);
    }

    /// <inheritdoc/>
    public string? ParameterError(int dim, int heads) => null;
}

/// <summary>phi(x) = max(x, 0) elementwise (the ReLU kernel of L2ViT and cosFormer):
/// non-negative, F = dim.</summary>
public readonly struct ReluMap : IFeatureMap
{
    /// <inheritdoc/>
    public int Features(int dim) => dim;

    /// <inheritdoc/>
    public float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float>
    {
        float v = x[offset + f];
        return v > 0f ? v : 0f;
    }

    /// <inheritdoc/>
    public string? ParameterError(int dim, int heads) => null;
}

/// <summary>
/// BASED's second-order Taylor map (Arora et al., "Simple linear attention language models
/// balance the recall-throughput tradeoff"): phi(x) = [1, x / d^(1/4), vec(x x^T) / (sqrt(2)
/// sqrt(d))], F = 1 + d + d^2, so that phi(q) . phi(k) = 1 + s + s^2 / 2 with s = q . k /
/// sqrt(d): the Taylor expansion of exp(s) to second order, always at least 1/2. The paper
/// applies it to a small projected dimension (16); the full outer product is kept, as its code
/// does.
/// </summary>
public readonly struct TaylorExpMap : IFeatureMap
{
    /// <inheritdoc/>
    public int Features(int dim) => 1 + dim + dim * dim;

    /// <inheritdoc/>
    public float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float>
    {
        if (f == 0) return 1f;
        if (f <= dim) return x[offset + f - 1] / MathF.Sqrt(MathF.Sqrt(dim));
        int pair = f - 1 - dim, i = pair / dim, j = pair - i * dim;
        return x[offset + i] * x[offset + j] / (MathF.Sqrt(2f) * MathF.Sqrt(dim));
    }

    /// <inheritdoc/>
    public string? ParameterError(int dim, int heads) =>
        dim > 4096 ? $"TaylorExpMap: dim = {dim}; expected at most 4096 (F = 1 + d + d^2)." : null;
}

/// <summary>
/// Performer's positive random features (FAVOR+, Choromanski et al., "Rethinking Attention with
/// Performers"): phi(x) = exp(w_f . x' - |x'|^2 / 2) / sqrt(m) for the m rows w_f of a Gaussian
/// projection, x' = x / d^(1/4), so that E[phi(q) . phi(k)] = exp(q . k / sqrt(d)): the
/// softmax kernel, unbiased and positive; its error falls as m grows. The projection (m, dim)
/// is a table: <see cref="RandomFeatureMap.Projection"/> makes the paper's orthogonal Gaussian one from a seed.
/// The paper's stabilizing shift (subtracting a maximum before exp) is left out: it rescales
/// each query's weights by a constant, which normalized attention cancels.
/// </summary>
public readonly struct RandomFeatureMap<TTable>(TTable projection, int features) : IFeatureMap,
    IValidated
    where TTable : struct, ITable<float>
{
    private readonly TTable _w = projection;
    private readonly int _m = features;

    /// <summary>m, the number of random features.</summary>
    public int FeatureCount => _m;

    /// <inheritdoc/>
    public int Features(int dim) => _m;

    /// <inheritdoc/>
    public float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float>
    {
        float dot = 0f, norm = 0f;
        int row = f * dim;
        for (int i = 0; i < dim; i++)
        {
            float v = x[offset + i];
            dot += _w[row + i] * v;
            norm += v * v;
        }
        float r = 1f / MathF.Sqrt(MathF.Sqrt(dim)); // x' = r x
        return MathF.Exp(r * dot - 0.5f * r * r * norm) / MathF.Sqrt(_m);
    }

    /// <inheritdoc/>
    public string? ParameterError() =>
        _m <= 0 ? VariantChecks.Missing(nameof(RandomFeatureMap<TTable>), "features", _m,
            "a positive count", _w.Length == 0) : null;

    /// <inheritdoc/>
    public string? ParameterError(int dim, int heads) =>
        ParameterError() ?? (_w.Length != (long)_m * dim
            ? $"RandomFeatureMap: the projection has {_w.Length} elements; expected "
              + $"{(long)_m * dim} = features {_m} x dim {dim}."
            : null);
}

/// <summary>Factories of <see cref="RandomFeatureMap{TTable}"/> projections.</summary>
public static class RandomFeatureMap
{
    /// <summary>An (m, dim) projection of Gaussian rows, orthogonal within each block of dim
    /// rows (Gram-Schmidt) and rescaled to the norms of Gaussian vectors, as FAVOR+ draws them;
    /// deterministic in <paramref name="seed"/>.</summary>
    public static float[] Projection(int features, int dim, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(features);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        var random = new Random(seed);
        var w = new double[features * dim];
        for (int i = 0; i < w.Length; i++) w[i] = Gaussian(random);
        var result = new float[w.Length];
        for (int block = 0; block < features; block += dim)
        {
            int end = Math.Min(features, block + dim);
            for (int r = block; r < end; r++)
            {
                // Gaussian norm first, then orthogonalize the direction.
                double norm = 0;
                for (int i = 0; i < dim; i++) norm += w[r * dim + i] * w[r * dim + i];
                norm = Math.Sqrt(norm);
                for (int p = block; p < r; p++)
                {
                    double dot = 0;
                    for (int i = 0; i < dim; i++) dot += w[r * dim + i] * w[p * dim + i];
                    for (int i = 0; i < dim; i++) w[r * dim + i] -= dot * w[p * dim + i];
                }
                double unit = 0;
                for (int i = 0; i < dim; i++) unit += w[r * dim + i] * w[r * dim + i];
                unit = Math.Sqrt(unit);
                for (int i = 0; i < dim; i++) w[r * dim + i] /= unit; // unit rows for the next
                for (int i = 0; i < dim; i++) result[r * dim + i] = (float)(w[r * dim + i] * norm);
            }
        }
        return result;
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}

/// <summary>
/// Hedgehog's feature map (Zhang et al., "The Hedgehog &amp; the Porcupine"): per head a
/// learned linear layer W_h (m, dim) with bias b_h (m), and phi(x) = [exp(W_h x + b_h),
/// exp(-W_h x - b_h)], F = 2m: positive, and trained so that normalized phi(q) . phi(k)
/// imitates softmax. The weights are an input (a table of heads x m x (dim + 1): each row
/// W_h[f, :] followed by b_h[f]).
/// </summary>
public readonly struct HedgehogMap<TTable>(TTable weights, int features) : IFeatureMap,
    IValidated
    where TTable : struct, ITable<float>
{
    private readonly TTable _w = weights;
    private readonly int _m = features;

    /// <inheritdoc/>
    public int Features(int dim) => 2 * _m;

    /// <inheritdoc/>
    public float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float>
    {
        int unit = f < _m ? f : f - _m;
        int row = (head * _m + unit) * (dim + 1);
        float z = _w[row + dim];
        for (int i = 0; i < dim; i++) z += _w[row + i] * x[offset + i];
        return MathF.Exp(f < _m ? z : -z);
    }

    /// <inheritdoc/>
    public string? ParameterError() =>
        _m <= 0 ? VariantChecks.Missing(nameof(HedgehogMap<TTable>), "features", _m,
            "a positive count", _w.Length == 0) : null;

    /// <inheritdoc/>
    public string? ParameterError(int dim, int heads) =>
        ParameterError() ?? (_w.Length != (long)heads * _m * (dim + 1)
            ? $"HedgehogMap: the weights have {_w.Length} elements; expected "
              + $"{(long)heads * _m * (dim + 1)} = heads {heads} x features {_m} x (dim {dim} + 1 bias)."
            : null);
}

/// <summary>
/// cosFormer's re-weighted ReLU map (Qin et al., "cosFormer: Rethinking Softmax in
/// Attention"): phi(x_i) = [relu(x_i) cos(pi i / 2M), relu(x_i) sin(pi i / 2M)], F = 2 dim, so
/// phi(q_i) . phi(k_j) = relu(q_i) . relu(k_j) cos(pi (i - j) / 2M): a locality bias that
/// decomposes. M is the longest sequence the map serves (positions 0 .. M - 1).
/// </summary>
public readonly struct CosFormerMap(int maxLength) : IFeatureMap, IValidated
{
    private readonly int _m = maxLength;

    /// <inheritdoc/>
    public int Features(int dim) => 2 * dim;

    /// <inheritdoc/>
    public float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float>
    {
        int i = f < dim ? f : f - dim;
        float v = x[offset + i];
        if (v <= 0f) return 0f;
        float angle = MathF.PI * position / (2f * _m);
        return v * (f < dim ? MathF.Cos(angle) : MathF.Sin(angle));
    }

    /// <inheritdoc/>
    public string? ParameterError() =>
        _m <= 0 ? VariantChecks.Missing(nameof(CosFormerMap), "maxLength", _m,
            "a positive length", true) : null;

    /// <inheritdoc/>
    public string? ParameterError(int dim, int heads) => ParameterError();

    /// <summary>M, the longest sequence served.</summary>
    public int MaxLength => _m;
}
