using Xunit.Sdk;

namespace Managed.Tests.Mechanisms;

/// <summary>
/// Inputs and fp64 yardsticks for the mechanism tests: seeded uniform tensors, dense softmax
/// attention written out in double (max-shifted, GQA), row copies for permutations and
/// splits, and the |actual - expected| &lt;= atol + rtol |expected| check.
/// </summary>
internal static class MechanismData
{
    /// <summary><paramref name="length"/> floats uniform in [-scale, scale).</summary>
    public static float[] Uniform(int seed, long length, float scale = 1f)
    {
        var random = new Random(seed);
        var x = new float[length];
        for (long i = 0; i < length; i++) x[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return x;
    }

    /// <summary>The float tensor in double.</summary>
    public static double[] ToDouble(float[] x) => Array.ConvertAll(x, v => (double)v);

    /// <summary>
    /// Dense softmax attention in double: O (batch, heads, seqQ, dv) from Q (batch, heads,
    /// seqQ, d), K (batch, kvHeads, seqK, d), V (batch, kvHeads, seqK, dv); query head h reads
    /// KV head h / (heads / kvHeads). Every weight row is materialized: small shapes only.
    /// </summary>
    public static double[] Attention(int batch, int heads, int kvHeads, int seqQ, int seqK,
        int d, int dv, double[] q, double[] k, double[] v, double scale)
    {
        var o = new double[(long)batch * heads * seqQ * dv];
        var w = new double[seqK];
        int group = heads / kvHeads;
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        {
            long kv = (long)b * kvHeads + h / group, bh = (long)b * heads + h;
            for (int i = 0; i < seqQ; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < seqK; j++)
                {
                    double s = 0;
                    for (int x = 0; x < d; x++)
                        s += q[(bh * seqQ + i) * d + x] * k[(kv * seqK + j) * d + x];
                    w[j] = s * scale;
                    max = Math.Max(max, w[j]);
                }
                double sum = 0;
                for (int j = 0; j < seqK; j++) sum += w[j] = Math.Exp(w[j] - max);
                for (int j = 0; j < seqK; j++)
                for (int c = 0; c < dv; c++)
                    o[(bh * seqQ + i) * dv + c] += w[j] / sum * v[(kv * seqK + j) * dv + c];
            }
        }
        return o;
    }

    /// <summary>Rows [from, from + count) of every item of a (items, rows, dim) tensor.</summary>
    public static float[] Rows(float[] x, int items, int rows, int dim, int from, int count)
    {
        var y = new float[(long)items * count * dim];
        for (int it = 0; it < items; it++)
            Array.Copy(x, ((long)it * rows + from) * dim, y, (long)it * count * dim,
                (long)count * dim);
        return y;
    }

    /// <summary>Row r of every item becomes row perm[r]: y[item, perm[r]] = x[item, r].</summary>
    public static float[] Permute(float[] x, int items, int rows, int dim, int[] perm)
    {
        var y = new float[x.Length];
        for (int it = 0; it < items; it++)
        for (int r = 0; r < rows; r++)
            Array.Copy(x, ((long)it * rows + r) * dim, y, ((long)it * rows + perm[r]) * dim, dim);
        return y;
    }

    /// <summary>A seeded permutation of 0..n-1 that moves at least one element (n &gt; 1).
    /// </summary>
    public static int[] Permutation(int seed, int n)
    {
        var p = Enumerable.Range(0, n).ToArray();
        new Random(seed).Shuffle(p);
        if (n > 1 && p.SequenceEqual(Enumerable.Range(0, n))) (p[0], p[1]) = (p[1], p[0]);
        return p;
    }

    /// <summary>Throws, naming the first element and the worst, unless every
    /// |actual - expected| &lt;= atol + rtol |expected| (NaN never passes).</summary>
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected,
        double atol, double rtol, string what)
    {
        if (actual.Length != expected.Length)
            throw new XunitException(
                $"{what}: {actual.Length} values, expected {expected.Length}.");
        double worst = 0;
        int worstAt = -1, failures = 0, first = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            if (!(err <= atol + rtol * Math.Abs(expected[i])))
            {
                failures++;
                if (first < 0) first = i;
            }
            if (!(err <= worst)) { worst = err; worstAt = i; }
        }
        if (failures > 0)
            throw new XunitException($"{what}: {failures} of {actual.Length} values off; first "
                + $"[{first}] = {actual[first]} vs {expected[first]}; worst |err| {worst} at "
                + $"[{worstAt}] (atol {atol}, rtol {rtol}).");
    }

    /// <summary>AssertClose against a float tensor.</summary>
    public static void AssertClose(ReadOnlySpan<float> actual, float[] expected, double atol,
        double rtol, string what) =>
        AssertClose(actual, ToDouble(expected), atol, rtol, what);
}
