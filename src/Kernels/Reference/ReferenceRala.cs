using Managed.Kernels.LinearAttention;

namespace Managed.Kernels.Reference;

/// <summary>
/// RALA (<see cref="RalaAttention"/>) in fp64 with the N x N weights materialized, written from
/// the paper's definition apart from the kernels: qbar the mean of phi(q_i) over the tokens of
/// the KV head's query heads, alpha_j = N softmax_j(scale qbar . phi(k_j)),
/// w_ij = alpha_j phi(q_i) . phi(k_j) / sum_s alpha_s phi(q_i) . phi(k_s), o = g (.) W V.
/// </summary>
public static class ReferenceRala
{
    /// <summary>alpha (batch, kvHeads, length).</summary>
    public static double[] Alphas(LinearAttentionShape s, double[] phiQ, double[] phiK,
        double scale)
    {
        int n = s.Length, f = s.Features, group = s.Heads / s.KvHeads;
        var alpha = new double[(long)s.Batch * s.KvHeads * n];
        for (long kv = 0; kv < (long)s.Batch * s.KvHeads; kv++)
        {
            var qbar = new double[f];
            for (int h = 0; h < group; h++)
            for (int i = 0; i < n; i++)
            for (int x = 0; x < f; x++)
                qbar[x] += phiQ[((kv * group + h) * n + i) * f + x] / (group * n);
            var logits = new double[n];
            double max = double.NegativeInfinity, total = 0;
            for (int j = 0; j < n; j++)
            {
                for (int x = 0; x < f; x++)
                    logits[j] += scale * qbar[x] * phiK[(kv * n + j) * f + x];
                max = Math.Max(max, logits[j]);
            }
            for (int j = 0; j < n; j++) total += Math.Exp(logits[j] - max);
            for (int j = 0; j < n; j++) alpha[kv * n + j] = n * Math.Exp(logits[j] - max) / total;
        }
        return alpha;
    }

    /// <summary>The weights (batch, heads, length, length).</summary>
    public static double[] Weights(LinearAttentionShape s, double[] phiQ, double[] phiK,
        double scale)
    {
        int n = s.Length, f = s.Features, group = s.Heads / s.KvHeads;
        var alpha = Alphas(s, phiQ, phiK, scale);
        var w = new double[(long)s.Batch * s.Heads * n * n];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long bh = (long)b * s.Heads + h, kv = (long)b * s.KvHeads + h / group;
            for (int i = 0; i < n; i++)
            {
                double sum = 0;
                for (int j = 0; j < n; j++)
                {
                    double dot = 0;
                    for (int x = 0; x < f; x++)
                        dot += phiQ[(bh * n + i) * f + x] * phiK[(kv * n + j) * f + x];
                    sum += w[(bh * n + i) * n + j] = alpha[kv * n + j] * dot;
                }
                for (int j = 0; j < n; j++) w[(bh * n + i) * n + j] /= sum;
            }
        }
        return w;
    }

    /// <summary>o = g (.) W V (batch, heads, length, valueDim); gate empty: g = 1.</summary>
    public static double[] Forward(LinearAttentionShape s, double[] phiQ, double[] phiK,
        double[] v, double[] gate, double scale)
    {
        var o = ReferenceVision.Mix(s, Weights(s, phiQ, phiK, scale), v);
        for (int e = 0; e < gate.Length; e++) o[e] *= gate[e];
        return o;
    }
}
