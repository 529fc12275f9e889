using Managed.Kernels.LinearAttention;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.VisionMechanisms;

public abstract partial class VisionMechanismTests
{
    // ---------------------------------------------------------------- the papers' maps

    private static double[] Mean(double[] x, int items, int rows, int dim)
    {
        var m = new double[items * dim];
        for (int it = 0; it < items; it++)
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < dim; c++) m[it * dim + c] += x[(it * rows + r) * dim + c] / rows;
        return m;
    }

    /// <summary>kv = sum_j k_j v_j^T * factor per item: (items, dim, dv).</summary>
    private static double[] Outer(double[] k, double[] v, int items, int n, int d, int dv,
        double factor)
    {
        var kv = new double[items * d * dv];
        for (int it = 0; it < items; it++)
        for (int j = 0; j < n; j++)
        for (int x = 0; x < d; x++)
        for (int c = 0; c < dv; c++)
            kv[(it * d + x) * dv + c] += k[(it * n + j) * d + x] * v[(it * n + j) * dv + c]
                * factor;
        return kv;
    }

    /// <summary>MALA from raw Q and K through its maps (elu + 1, d^(-1/2) on the queries)
    /// equals a transcription of the authors' formula: z = phi(q) . mean phi(k) * scale,
    /// kv = sum phi(k) v^T * scale / N, o = phi(q) kv (1 + 1/z) - z vbar.</summary>
    [Fact]
    public void MalaThroughItsMapsEqualsTheAuthorsFormula()
    {
        const int n = 23, d = 6, dv = 4;
        var s = new LinearAttentionShape(1, 2, 2, n, d, dv);
        float[] q = Uniform(90, s.QueryLength), k = Uniform(91, s.KeyLength),
            v = Uniform(92, s.ValueLength);
        float[] pq = new float[q.Length], pk = new float[k.Length];
        FeatureMapping.Apply(Device, ScaledEluPlusOneMap.MalaQuery(d), 1, 2, n, d, q, pq);
        FeatureMapping.Apply(Device, ScaledEluPlusOneMap.Unscaled, 1, 2, n, d, k, pk);
        var o = new float[s.OutputLength];
        MalaAttention.Forward(Device, s, pq, pk, v, o);
        double scale = 1 / Math.Sqrt(d);
        double[] eq = Array.ConvertAll(q, x => x > 0 ? x + 1.0 : Math.Exp(x)),
            ek = Array.ConvertAll(k, x => x > 0 ? x + 1.0 : Math.Exp(x)), dvv = ToDouble(v);
        var kMean = Mean(ek, 2, n, d);
        var vMean = Mean(dvv, 2, n, dv);
        var kv = Outer(ek, dvv, 2, n, d, dv, scale / n);
        var expected = new double[s.OutputLength];
        for (int it = 0; it < 2; it++)
        for (int i = 0; i < n; i++)
        {
            double z = 0;
            for (int x = 0; x < d; x++) z += eq[(it * n + i) * d + x] * kMean[it * d + x];
            z *= scale;
            for (int c = 0; c < dv; c++)
            {
                double qkv = 0;
                for (int x = 0; x < d; x++)
                    qkv += eq[(it * n + i) * d + x] * kv[(it * d + x) * dv + c];
                expected[(it * n + i) * dv + c] = qkv * (1 + 1 / z) - z * vMean[it * dv + c];
            }
        }
        AssertClose(o, expected, Atol, Rtol, "MALA vs the authors' formula");
    }

    /// <summary>InLine from raw Q and K through its maps (identity, d^(-1/2) / N on the
    /// queries) equals a transcription of the authors' formula:
    /// x = q kv + (1 - q . mean k * scale) vbar, kv = sum k v^T * scale / N.</summary>
    [Fact]
    public void InLineThroughItsMapsEqualsTheAuthorsFormula()
    {
        const int n = 19, d = 5, dv = 3;
        var s = new LinearAttentionShape(1, 1, 1, n, d, dv);
        float[] q = Uniform(93, s.QueryLength), k = Uniform(94, s.KeyLength),
            v = Uniform(95, s.ValueLength);
        float[] pq = new float[q.Length], pk = new float[k.Length];
        FeatureMapping.Apply(Device, ScaledIdentityMap.InLineQuery(d, n), 1, 1, n, d, q, pq);
        FeatureMapping.Apply(Device, ScaledIdentityMap.Identity, 1, 1, n, d, k, pk);
        var o = new float[s.OutputLength];
        InLineAttention.Forward(Device, s, pq, pk, v, o);
        double scale = 1 / Math.Sqrt(d);
        double[] dq = ToDouble(q), dk = ToDouble(k), dvv = ToDouble(v);
        var kMean = Mean(dk, 1, n, d);
        var vMean = Mean(dvv, 1, n, dv);
        var kv = Outer(dk, dvv, 1, n, d, dv, scale / n);
        var expected = new double[s.OutputLength];
        for (int i = 0; i < n; i++)
        {
            double qk = 0;
            for (int x = 0; x < d; x++) qk += dq[i * d + x] * kMean[x];
            for (int c = 0; c < dv; c++)
            {
                double qkv = 0;
                for (int x = 0; x < d; x++) qkv += dq[i * d + x] * kv[x * dv + c];
                expected[i * dv + c] = qkv + (1 - qk * scale) * vMean[c];
            }
        }
        AssertClose(o, expected, Atol, Rtol, "InLine vs the authors' formula");
    }

    /// <summary>Default instances of the scaled maps (no factor) are rejected by name.
    /// </summary>
    [Fact]
    public void ScaledMapsRejectDefaultInstances()
    {
        float[] x = new float[8], phi = new float[8];
        Assert.Throws<ArgumentException>("map", () => FeatureMapping.Apply(Device,
            default(ScaledEluPlusOneMap), 1, 1, 2, 4, x, phi));
        Assert.Throws<ArgumentException>("map", () => FeatureMapping.Apply(Device,
            default(ScaledIdentityMap), 1, 1, 2, 4, x, phi));
        Assert.Throws<ArgumentException>("map", () => FeatureMapping.Apply(Device,
            new ScaledEluPlusOneMap(-1f), 1, 1, 2, 4, x, phi));
    }
}
