using Managed.Kernels.Layouts;
using Managed.Tests.Support;
using Half = System.Half;

namespace Managed.Tests.Matmul;

/// <summary>Weight storage of a test case.</summary>
public enum WeightType
{
    Float,
    Half,
    BFloat16,
}

/// <summary>
/// One linear layer call's data: x (m, k) and W (n, k) uniform in [-1, 1], W rounded to its
/// storage type, an optional bias, and the fp64 reference y = x W^T + b computed on the
/// rounded weights, with no library code.
/// </summary>
public sealed class LinearCase
{
    public LinearCase(int m, int n, int k, WeightType type, bool bias, int seed)
    {
        (M, N, K, Type) = (m, n, k, type);
        var rng = new Random(seed);
        X = Uniform(rng, m * k);
        WideWeight = Uniform(rng, n * k);
        switch (type)
        {
            case WeightType.Half:
                HalfWeight = WideWeight.Select(v => (Half)v).ToArray();
                WideWeight = HalfWeight.Select(h => (float)h).ToArray();
                break;
            case WeightType.BFloat16:
                BFloat16Weight = WideWeight.Select(BFloat16.FromSingle).ToArray();
                WideWeight = BFloat16Weight.Select(b => (float)b).ToArray();
                break;
        }
        Bias = bias ? Uniform(rng, n) : [];
        Expected = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias ? Bias[j] : 0.0;
                for (int c = 0; c < k; c++) s += (double)X[i * k + c] * WideWeight[j * k + c];
                Expected[i * n + j] = s;
            }
    }

    public int M { get; }
    public int N { get; }
    public int K { get; }
    public WeightType Type { get; }
    public float[] X { get; }
    public float[] Bias { get; }

    /// <summary>The weights as the kernels widen them.</summary>
    public float[] WideWeight { get; }
    public Half[]? HalfWeight { get; }
    public BFloat16[]? BFloat16Weight { get; }
    public double[] Expected { get; }

    /// <summary>fp32 sums of k products of magnitude up to 1: rounding grows about as
    /// sqrt(k) (about 1e-6 at k = 1000 for |y| ~ 10); the bound leaves a margin of 10 or more
    /// and still catches one product dropped or doubled (~0.3).</summary>
    public Tolerance Tolerance => new(1e-5 * Math.Sqrt(K), 1e-5);

    public override string ToString() =>
        $"m {M}, n {N}, k {K}, {Type}{(Bias.Length > 0 ? ", bias" : "")}";

    private static float[] Uniform(Random rng, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }
}
