using Managed.Kernels.LinearAttention;

namespace Managed.Kernels.Reference;

/// <summary>
/// MALA (<see cref="MalaAttention"/>) in fp64 with the N x N weights materialized, written
/// from the paper's definition apart from the kernels: m_i = phi(q_i) . (1/N) sum_j phi(k_j),
/// w_ij = (1 + 1/m_i) phi(q_i) . phi(k_j) / N - m_i / N, o_i = sum_j w_ij v_j. Query head h
/// reads KV head h / (heads / kvHeads).
/// </summary>
public static class ReferenceMala
{
    /// <summary>The weights (batch, heads, length, length).</summary>
    public static double[] Weights(LinearAttentionShape s, double[] phiQ, double[] phiK)
    {
        int n = s.Length, f = s.Features, group = s.Heads / s.KvHeads;
        var w = new double[(long)s.Batch * s.Heads * n * n];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long bh = (long)b * s.Heads + h, kv = (long)b * s.KvHeads + h / group;
            for (int i = 0; i < n; i++)
            {
                var dots = new double[n];
                double m = 0;
                for (int j = 0; j < n; j++)
                {
                    for (int x = 0; x < f; x++)
                        dots[j] += phiQ[(bh * n + i) * f + x] * phiK[(kv * n + j) * f + x];
                    m += dots[j] / n;
                }
                for (int j = 0; j < n; j++)
                    w[(bh * n + i) * n + j] = (1 + 1 / m) * dots[j] / n - m / n;
            }
        }
        return w;
    }

    /// <summary>O = W V (batch, heads, length, valueDim).</summary>
    public static double[] Forward(LinearAttentionShape s, double[] phiQ, double[] phiK,
        double[] v) => ReferenceVision.Mix(s, Weights(s, phiQ, phiK), v);
}
