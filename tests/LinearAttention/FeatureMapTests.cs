using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Variants;
using Managed.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.LinearAttention;

/// <summary>
/// The feature maps on the host, through <see cref="FeatureMapping.Apply{TMap}(ComputeDevice,
/// TMap, int, int, int, int, ReadOnlySpan{float}, Span{float}, int)"/>: each feature against
/// its formula in double (with the head and position of its row), the kernel identities of
/// the Taylor and cosFormer maps, the convergence of Performer's random features to softmax
/// attention as m grows, and the projection's determinism and orthogonality.
/// </summary>
public sealed class FeatureMapTests
{
    private const double Unit = LinearData.Unit;
    private const int Batch = 2, Heads = 3, Length = 5, Dim = 4, First = 3, CosLength = 16;

    /// <summary>The maps of the tests, by name.</summary>
    public static TheoryData<string> Maps() =>
        new() { "elu+1", "relu", "taylor", "cosformer", "hedgehog", "random" };

    /// <summary>Hedgehog weights: heads x m x (dim + 1), uniform in [-0.5, 0.5].</summary>
    internal static float[] HedgehogWeights(int heads, int m, int dim, int seed) =>
        LinearData.Uniform(new Random(seed), heads * m * (dim + 1), -0.5f, 0.5f);

    internal const int HedgehogM = 3, RandomM = 6;

    /// <summary>x (batch 2, heads 3, length 5, dim 4) uniform in [-1.5, 1.5].</summary>
    internal static float[] Rows(int seed) =>
        LinearData.Uniform(new Random(seed), Batch * Heads * Length * Dim, -1.5f, 1.5f);

    /// <summary>Feature f of row r of <paramref name="x"/> in double, with the magnitude of
    /// the exponent it takes (0 for maps without one: their rounding is a few u relative).
    /// </summary>
    private static (double Value, double Exponent) Expected(string map, float[] x, float[] table,
        int row, int f)
    {
        int head = row / Length % Heads, position = First + row % Length;
        double X(int i) => x[row * Dim + i];
        switch (map)
        {
            case "elu+1": return (X(f) > 0 ? X(f) + 1 : Math.Exp(X(f)), Math.Abs(X(f)));
            case "relu": return (Math.Max(X(f), 0), 0);
            case "taylor":
                if (f == 0) return (1, 0);
                if (f <= Dim) return (X(f - 1) / Math.Pow(Dim, 0.25), 0);
                int i = (f - 1 - Dim) / Dim, j = (f - 1 - Dim) % Dim;
                return (X(i) * X(j) / (Math.Sqrt(2) * Math.Sqrt(Dim)), 0);
            case "cosformer":
            {
                int e = f % Dim;
                double angle = Math.PI * position / (2.0 * CosLength);
                return (Math.Max(X(e), 0) * (f < Dim ? Math.Cos(angle) : Math.Sin(angle)), 0);
            }
            case "hedgehog":
            {
                int unit = f % HedgehogM, w = (head * HedgehogM + unit) * (Dim + 1);
                double z = table[w + Dim], a = Math.Abs(z);
                for (int k = 0; k < Dim; k++)
                {
                    z += table[w + k] * X(k);
                    a += Math.Abs(table[w + k] * X(k));
                }
                return (Math.Exp(f < HedgehogM ? z : -z), a);
            }
            case "random":
            {
                double r = Math.Pow(Dim, -0.25), dot = 0, norm = 0, a = 0;
                for (int k = 0; k < Dim; k++)
                {
                    dot += table[f * Dim + k] * X(k);
                    a += Math.Abs(table[f * Dim + k] * X(k));
                    norm += X(k) * X(k);
                }
                return (Math.Exp(r * dot - 0.5 * r * r * norm) / Math.Sqrt(RandomM),
                    r * a + 0.5 * r * r * norm);
            }
            default: throw new ArgumentException(map);
        }
    }

    /// <summary>The table a map reads (empty for the maps without one).</summary>
    internal static float[] Table(string map) => map switch
    {
        "hedgehog" => HedgehogWeights(Heads, HedgehogM, Dim, 5),
        "random" => RandomFeatureMap.Projection(RandomM, Dim, 6),
        _ => [],
    };

    /// <summary>phi of <paramref name="x"/> on the host.</summary>
    internal static float[] ApplyHost(string map, float[] x, float[] table)
    {
        var host = ComputeDevice.Host;
        switch (map)
        {
            case "elu+1": return Apply(host, default(EluPlusOneMap), x);
            case "relu": return Apply(host, default(ReluMap), x);
            case "taylor": return Apply(host, default(TaylorExpMap), x);
            case "cosformer": return Apply(host, new CosFormerMap(CosLength), x);
            case "hedgehog":
                return Apply(host, new HedgehogMap<HostTable<float>>(
                    new VariantTable<float>(table).Host, HedgehogM), x);
            case "random":
                return Apply(host, new RandomFeatureMap<HostTable<float>>(
                    new VariantTable<float>(table).Host, RandomM), x);
            default: throw new ArgumentException(map);
        }
    }

    /// <summary>phi of the (batch 2, heads 3, length 5, dim 4) rows, starting at position 3.
    /// </summary>
    internal static float[] Apply<TMap>(ComputeDevice device, TMap map, float[] x)
        where TMap : struct, IFeatureMap
    {
        var phi = new float[Batch * Heads * Length * map.Features(Dim)];
        FeatureMapping.Apply(device, map, Batch, Heads, Length, Dim, x, phi, First);
        return phi;
    }

    /// <summary>Every feature of every row (2 sequences, 3 heads, positions 3..7) equals its
    /// formula in double: within 1e-6 + 1e-5 relative (a few roundings of a float map are
    /// about 1e-7 relative), plus, for the maps that exponentiate a dot product, the fp32
    /// error of that exponent, 4 (dim + 4) u times the magnitude of its terms. A wrong head
    /// (Hedgehog's weights), position (cosFormer's angle) or index moves a feature by far
    /// more.</summary>
    [Theory]
    [MemberData(nameof(Maps))]
    public void FeaturesMatchTheirFormula(string map)
    {
        var x = Rows(31);
        var table = Table(map);
        var phi = ApplyHost(map, x, table);
        int features = phi.Length / (Batch * Heads * Length);
        Assert.Equal(map switch
        {
            "taylor" => 1 + Dim + Dim * Dim,
            "cosformer" => 2 * Dim,
            "hedgehog" => 2 * HedgehogM,
            "random" => RandomM,
            _ => Dim,
        }, features);
        for (int row = 0; row < Batch * Heads * Length; row++)
            for (int f = 0; f < features; f++)
            {
                var (value, exponent) = Expected(map, x, table, row, f);
                double tol = 1e-6 + (1e-5 + 4 * (Dim + 4) * Unit * exponent) * Math.Abs(value);
                float actual = phi[row * features + f];
                if (!(Math.Abs(actual - value) <= tol))
                    throw new XunitException(
                        $"{map}: row {row} feature {f}: {actual:R}, expected {value:R} (tol {tol:g3}).");
            }
    }

    /// <summary>
    /// BASED's identity: phi(q) . phi(k) = 1 + s + s^2 / 2 with s = q . k / sqrt(d), for
    /// dims 1, 3, 4, 16 and inputs up to 2 in magnitude. The features carry at most about 6
    /// roundings each (two roots, a product, a division), so a product of two is within 12 u
    /// relative, and the sum within 16 u of the sum of the terms' magnitudes,
    /// A = 1 + |q|.|k| / sqrt(d) + (|q|.|k|)^2 / (2d).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(16)]
    public void TaylorFeaturesGiveTheSecondOrderExpansion(int dim)
    {
        var random = new Random(dim);
        var map = default(TaylorExpMap);
        int features = map.Features(dim);
        for (int trial = 0; trial < 40; trial++)
        {
            float scale = trial % 2 == 0 ? 1f : 2f;
            var rows = LinearData.Uniform(random, 2 * dim, -scale, scale);
            var phi = new float[2 * features];
            FeatureMapping.Apply(ComputeDevice.Host, map, 1, 1, 2, dim, rows, phi);
            double dot = 0, qk = 0, absQk = 0;
            for (int f = 0; f < features; f++) dot += (double)phi[f] * phi[features + f];
            for (int i = 0; i < dim; i++)
            {
                qk += (double)rows[i] * rows[dim + i];
                absQk += Math.Abs((double)rows[i] * rows[dim + i]);
            }
            double s = qk / Math.Sqrt(dim), expected = 1 + s + s * s / 2;
            double a = 1 + absQk / Math.Sqrt(dim) + absQk * absQk / (2 * dim);
            Assert.True(Math.Abs(dot - expected) <= 16 * Unit * a,
                $"dim {dim} trial {trial}: phi(q).phi(k) = {dot:R}, 1 + s + s^2/2 = {expected:R}");
        }
    }

    /// <summary>cosFormer's identity: phi(q_i) . phi(k_j) = relu(q_i) . relu(k_j)
    /// cos(pi (i - j) / 2M) for every pair of positions of a sequence of M = 16 tokens
    /// (within 16 u of relu(q).relu(k): the angles, cos and sin carry a few roundings).</summary>
    [Fact]
    public void CosFormerFeaturesDecomposeTheCosineReweighting()
    {
        const int m = CosLength, dim = 5;
        var random = new Random(17);
        var q = LinearData.Uniform(random, m * dim, -1, 1);
        var k = LinearData.Uniform(random, m * dim, -1, 1);
        var map = new CosFormerMap(m);
        var pq = new float[m * 2 * dim];
        var pk = new float[m * 2 * dim];
        FeatureMapping.Apply(ComputeDevice.Host, map, 1, 1, m, dim, q, pq);
        FeatureMapping.Apply(ComputeDevice.Host, map, 1, 1, m, dim, k, pk);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++)
            {
                double dot = 0, relu = 0;
                for (int f = 0; f < 2 * dim; f++) dot += (double)pq[i * 2 * dim + f] * pk[j * 2 * dim + f];
                for (int x = 0; x < dim; x++)
                    relu += Math.Max(q[i * dim + x], 0.0) * Math.Max(k[j * dim + x], 0.0);
                double expected = relu * Math.Cos(Math.PI * (i - j) / (2.0 * m));
                Assert.True(Math.Abs(dot - expected) <= 16 * Unit * relu + 1e-12,
                    $"positions {i}, {j}: {dot:R}, expected {expected:R}");
            }
    }

    /// <summary>A later firstPosition shifts the positions of the rows: the rows of a call
    /// from position 3 equal rows 3.. of a call from position 0.</summary>
    [Fact]
    public void FirstPositionShiftsThePositions()
    {
        const int dim = 3, n = 10;
        var x = LinearData.Uniform(new Random(3), n * dim, -1, 1);
        var map = new CosFormerMap(32);
        var all = new float[n * 2 * dim];
        FeatureMapping.Apply(ComputeDevice.Host, map, 1, 1, n, dim, x, all);
        var tail = new float[(n - 3) * 2 * dim];
        FeatureMapping.Apply(ComputeDevice.Host, map, 1, 1, n - 3, dim, x.AsSpan(3 * dim), tail,
            firstPosition: 3);
        Assert.Equal(all.AsSpan(3 * 2 * dim).ToArray(), tail);
        Assert.NotEqual(all.AsSpan(0, tail.Length).ToArray(), tail);
    }

    // ------------------------------------------------------------------------------------
    // Performer.

    /// <summary>
    /// Normalized random-feature attention converges to exact softmax attention
    /// (weights exp(q . k / sqrt(d)) normalized, computed in double) as m grows: the mean
    /// absolute output error over 8 seeds (projection and data), d = 16, 24 queries and keys
    /// uniform in [-1, 1], non-causal. Asymptotically the estimator's standard deviation falls
    /// as 1 / sqrt(m) (2-fold per fourfold m); at small m less, because exp(w . (q' + k')) is
    /// lognormal with sigma^2 = |q' + k'|^2 ~ 2.7 here, heavy-tailed, so few features rarely
    /// draw the tail (the projection itself is unbiased: the mean of phi(q) . phi(k) over
    /// seeds converges to exp(q . k / sqrt(d))). Measured with these seeds:
    /// 16: 0.0509, 64: 0.0373, 256: 0.0210, 1024: 0.0118, 4096: 0.0064 (fourfold steps 1.37,
    /// 1.78, 1.77, 1.84; 16 to 1024 4.3-fold). Bounds, with margin: each fourfold m at least
    /// 1.15-fold lower, error(1024) &lt; error(16) / 2.5, and error(4096) &lt; 0.01 (a biased
    /// map, say a wrong 1 / d^(1/4), stops falling at its bias).
    /// </summary>
    [Fact]
    public void RandomFeatureAttentionConvergesToSoftmax()
    {
        int[] ms = [16, 64, 256, 1024, 4096];
        var error = ms.Select(m => Enumerable.Range(0, 8).Average(seed => PerformerError(m, seed)))
            .ToArray();
        string report = string.Join(", ", ms.Select((m, i) => $"{m}: {error[i]:g4}"));
        for (int i = 1; i < ms.Length; i++)
            Assert.True(error[i] < error[i - 1] / 1.15, $"error does not fall with m: {report}");
        Assert.True(error[3] < error[0] / 2.5, $"error(1024) not below error(16) / 2.5: {report}");
        Assert.True(error[4] < 0.01, $"error(4096) not below 0.01: {report}");
    }

    private static double PerformerError(int m, int seed)
    {
        const int n = 24, d = 16, dv = 4;
        var random = new Random(100 + seed);
        var q = LinearData.Uniform(random, n * d, -1, 1);
        var k = LinearData.Uniform(random, n * d, -1, 1);
        var v = LinearData.Uniform(random, n * dv, -1, 1);
        var map = new RandomFeatureMap<HostTable<float>>(
            new VariantTable<float>(RandomFeatureMap.Projection(m, d, 1000 + seed)).Host, m);
        var pq = new float[n * m];
        var pk = new float[n * m];
        FeatureMapping.Apply(ComputeDevice.Host, map, 1, 1, n, d, q, pq);
        FeatureMapping.Apply(ComputeDevice.Host, map, 1, 1, n, d, k, pk);
        var output = new float[n * dv];
        ChunkedLinearAttention.Forward(ComputeDevice.Host, new LinearAttentionShape(1, 1, 1, n, m, dv),
            pq, pk, v, [], output, new LinearAttentionOptions { Normalize = true });
        double total = 0;
        for (int t = 0; t < n; t++)
        {
            var w = new double[n];
            for (int s = 0; s < n; s++)
            {
                double dot = 0;
                for (int i = 0; i < d; i++) dot += (double)q[t * d + i] * k[s * d + i];
                w[s] = Math.Exp(dot / Math.Sqrt(d));
            }
            double sum = w.Sum();
            for (int c = 0; c < dv; c++)
            {
                double exact = 0;
                for (int s = 0; s < n; s++) exact += w[s] * v[s * dv + c];
                total += Math.Abs(output[t * dv + c] - exact / sum);
            }
        }
        return total / (n * dv);
    }

    /// <summary>The projection is a function of its seed (equal twice, different for another
    /// seed), of the requested size, finite, and orthogonal within each block of dim rows.
    /// </summary>
    [Theory]
    [InlineData(8, 8)]
    [InlineData(20, 8)]
    [InlineData(64, 16)]
    public void ProjectionIsDeterministicAndBlockOrthogonal(int m, int dim)
    {
        var a = RandomFeatureMap.Projection(m, dim, 42);
        Assert.Equal(m * dim, a.Length);
        Assert.Equal(a, RandomFeatureMap.Projection(m, dim, 42));
        Assert.NotEqual(a, RandomFeatureMap.Projection(m, dim, 43));
        Assert.All(a, v => Assert.True(float.IsFinite(v)));
        for (int block = 0; block < m; block += dim)
            for (int r = block; r < Math.Min(m, block + dim); r++)
                for (int p = block; p < r; p++)
                {
                    double dot = 0, nr = 0, np = 0;
                    for (int i = 0; i < dim; i++)
                    {
                        dot += (double)a[r * dim + i] * a[p * dim + i];
                        nr += (double)a[r * dim + i] * a[r * dim + i];
                        np += (double)a[p * dim + i] * a[p * dim + i];
                    }
                    Assert.True(Math.Abs(dot) <= 1e-5 * Math.Sqrt(nr * np),
                        $"rows {r} and {p} of block {block / dim}: cosine {dot / Math.Sqrt(nr * np):g3}");
                }
    }

    /// <summary>Across rows of different blocks the projection is not orthogonal (blocks are
    /// independent draws), and its squared row norms average about dim, as Gaussian rows'
    /// do (mean dim, standard deviation sqrt(2 dim / m) of the mean: 512 rows of 16 give
    /// 16 +- 0.25; the bound is 4 standard deviations).</summary>
    [Fact]
    public void ProjectionRowsHaveGaussianNorms()
    {
        const int m = 512, dim = 16;
        var a = RandomFeatureMap.Projection(m, dim, 7);
        double mean = 0;
        for (int r = 0; r < m; r++)
        {
            double n2 = 0;
            for (int i = 0; i < dim; i++) n2 += (double)a[r * dim + i] * a[r * dim + i];
            mean += n2 / m;
        }
        Assert.InRange(mean, dim - 1.0, dim + 1.0);
        double cross = 0;
        for (int i = 0; i < dim; i++) cross += (double)a[i] * a[dim * dim + i];
        Assert.True(Math.Abs(cross) > 1e-3, "rows of different blocks are orthogonal");
    }
}
