using Managed.Kernels.Attention;

namespace Managed.Kernels.Reference;

/// <summary>
/// fp64 reference of Fastmax (Gerami et al., "FAST: Factorizable Attention for Speeding up
/// Transformers") evaluated explicitly in O(N^2): every weight f(q~ . k~) of the N x N matrix
/// is computed from the normalized rows and divided by its row sum. Shares no code with the
/// kernels. Q (batch, heads, n, d), K (batch, kvHeads, n, d), V (batch, kvHeads, n, dv),
/// output (batch, heads, n, dv), sizes in an <see cref="AttentionShape"/> with SeqQ = SeqK = n;
/// query head h reads KV head h / (heads / kvHeads).
/// </summary>
public static class ReferenceCenteredPolynomial
{
    /// <summary>x~ = (x - mean(x)) / |x - mean(x)| (0 for a constant row).</summary>
    public static double[] Normalize(ReadOnlySpan<double> x)
    {
        double mean = 0;
        foreach (double e in x) mean += e;
        mean /= x.Length;
        var c = new double[x.Length];
        double norm = 0;
        for (int i = 0; i < x.Length; i++) norm += (c[i] = x[i] - mean) * c[i];
        norm = Math.Sqrt(norm);
        for (int i = 0; i < c.Length; i++) c[i] = norm > 0 ? c[i] / norm : 0;
        return c;
    }

    /// <summary>f(s) = 1 + s (order 1) or 1 + s + s^2 / 2 (order 2).</summary>
    public static double Score(double s, int order) => order == 1 ? 1 + s : 1 + s + s * s / 2;

    /// <summary>Fastmax, causal (keys s &lt;= t) or not: w_ts = f(q~_t . k~_s) / sum_s' f(q~_t .
    /// k~_s'), O = W V (a row whose weights sum to 0 gives 0).</summary>
    public static double[] Attention(AttentionShape s, int order, double[] q, double[] k,
        double[] v, bool causal)
    {
        int n = s.SeqQ, d = s.HeadDim, dv = s.ValueDim, group = s.Heads / s.KvHeads;
        var o = new double[s.OutputLength];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long bh = (long)b * s.Heads + h, kv = (long)b * s.KvHeads + h / group;
            var keys = new double[n][];
            for (int j = 0; j < n; j++) keys[j] = Normalize(k.AsSpan((int)((kv * n + j) * d), d));
            for (int t = 0; t < n; t++)
            {
                var qt = Normalize(q.AsSpan((int)((bh * n + t) * d), d));
                int last = causal ? t : n - 1;
                var w = new double[last + 1];
                double sum = 0;
                for (int j = 0; j <= last; j++)
                {
                    double dot = 0;
                    for (int x = 0; x < d; x++) dot += qt[x] * keys[j][x];
                    sum += w[j] = Score(dot, order);
                }
                if (sum == 0) continue;
                for (int j = 0; j <= last; j++)
                for (int c = 0; c < dv; c++)
                    o[(bh * n + t) * dv + c] += w[j] / sum * v[(kv * n + j) * dv + c];
            }
        }
        return o;
    }
}
