using Managed.Kernels.Attention;

namespace Managed.Kernels.Reference;

/// <summary>
/// fp64 references of BASED's two mixers (Arora et al., "Simple linear attention language
/// models balance the recall-throughput tradeoff"), written from the definitions and sharing
/// no code with the kernels. Raw rows: Q (batch, heads, n, d), K (batch, kvHeads, n, d), V
/// (batch, kvHeads, n, dv), output (batch, heads, n, dv), the sizes in an
/// <see cref="AttentionShape"/> with SeqQ = SeqK = n and HeadDim = d (the feature dim d' of
/// the linear mixer); query head h reads KV head h / (heads / kvHeads).
/// </summary>
public static class ReferenceBased
{
    /// <summary>The Taylor kernel 1 + s + s^2 / 2 with s = q . k / sqrt(d): what
    /// phi(q) . phi(k) must equal.</summary>
    public static double TaylorKernel(ReadOnlySpan<double> q, ReadOnlySpan<double> k)
    {
        double dot = 0;
        for (int i = 0; i < q.Length; i++) dot += q[i] * k[i];
        double s = dot / Math.Sqrt(q.Length);
        return 1 + s + s * s / 2;
    }

    /// <summary>The Taylor feature vector in double: [1, x / d^(1/4), x_i x_j / (sqrt(2)
    /// sqrt(d)) for i, j in row-major order].</summary>
    public static double[] TaylorFeatures(ReadOnlySpan<double> x)
    {
        int d = x.Length;
        var phi = new double[1 + d + d * d];
        phi[0] = 1;
        for (int i = 0; i < d; i++) phi[1 + i] = x[i] / Math.Pow(d, 0.25);
        for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            phi[1 + d + i * d + j] = x[i] * x[j] / (Math.Sqrt(2) * Math.Sqrt(d));
        return phi;
    }

    /// <summary>The linear mixer as the naive quadratic form: w_ts = K(q_t, k_s) for s &lt;= t
    /// with the Taylor kernel written out (no feature map), divided by the row sum.</summary>
    public static double[] Linear(AttentionShape s, double[] q, double[] k, double[] v)
    {
        int n = s.SeqQ, d = s.HeadDim, dv = s.ValueDim, group = s.Heads / s.KvHeads;
        var o = new double[s.OutputLength];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long bh = (long)b * s.Heads + h, kv = (long)b * s.KvHeads + h / group;
            for (int t = 0; t < n; t++)
            {
                var qt = q.AsSpan((int)((bh * n + t) * d), d);
                double sum = 0;
                var w = new double[t + 1];
                for (int j = 0; j <= t; j++)
                    sum += w[j] = TaylorKernel(qt, k.AsSpan((int)((kv * n + j) * d), d));
                for (int j = 0; j <= t; j++)
                for (int c = 0; c < dv; c++)
                    o[(bh * n + t) * dv + c] += w[j] / sum * v[(kv * n + j) * dv + c];
            }
        }
        return o;
    }

    /// <summary>The linear mixer as its recurrence, token by token: S_t = S_(t-1) +
    /// phi(k_t) v_t^T, z_t = z_(t-1) + phi(k_t), o_t = phi(q_t) S_t / (phi(q_t) . z_t), with
    /// the explicit feature vectors of <see cref="TaylorFeatures"/>.</summary>
    public static double[] LinearRecurrent(AttentionShape s, double[] q, double[] k,
        double[] v)
    {
        int n = s.SeqQ, d = s.HeadDim, dv = s.ValueDim, group = s.Heads / s.KvHeads;
        int f = 1 + d + d * d;
        var o = new double[s.OutputLength];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long bh = (long)b * s.Heads + h, kv = (long)b * s.KvHeads + h / group;
            var state = new double[f, dv];
            var z = new double[f];
            for (int t = 0; t < n; t++)
            {
                var pk = TaylorFeatures(k.AsSpan((int)((kv * n + t) * d), d));
                var pq = TaylorFeatures(q.AsSpan((int)((bh * n + t) * d), d));
                for (int x = 0; x < f; x++)
                {
                    z[x] += pk[x];
                    for (int c = 0; c < dv; c++) state[x, c] += pk[x] * v[(kv * n + t) * dv + c];
                }
                double den = 0;
                for (int x = 0; x < f; x++) den += pq[x] * z[x];
                for (int c = 0; c < dv; c++)
                {
                    double num = 0;
                    for (int x = 0; x < f; x++) num += pq[x] * state[x, c];
                    o[(bh * n + t) * dv + c] = num / den;
                }
            }
        }
        return o;
    }

    /// <summary>The window mixer: o_t = sum_j softmax_j(q_t . k_j / sqrt(d)) v_j over
    /// t - window &lt; j &lt;= t, max-shifted.</summary>
    public static double[] Window(AttentionShape s, int window, double[] q, double[] k,
        double[] v)
    {
        int n = s.SeqQ, d = s.HeadDim, dv = s.ValueDim, group = s.Heads / s.KvHeads;
        double scale = 1 / Math.Sqrt(d);
        var o = new double[s.OutputLength];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long bh = (long)b * s.Heads + h, kv = (long)b * s.KvHeads + h / group;
            for (int t = 0; t < n; t++)
            {
                int first = Math.Max(0, t - window + 1);
                var w = new double[t - first + 1];
                double max = double.NegativeInfinity;
                for (int j = first; j <= t; j++)
                {
                    double dot = 0;
                    for (int x = 0; x < d; x++)
                        dot += q[(bh * n + t) * d + x] * k[(kv * n + j) * d + x];
                    w[j - first] = dot * scale;
                    max = Math.Max(max, w[j - first]);
                }
                double sum = 0;
                for (int j = 0; j < w.Length; j++) sum += w[j] = Math.Exp(w[j] - max);
                for (int j = first; j <= t; j++)
                for (int c = 0; c < dv; c++)
                    o[(bh * n + t) * dv + c] += w[j - first] / sum * v[(kv * n + j) * dv + c];
            }
        }
        return o;
    }
}
