using Managed.Kernels.LinearAttention;

namespace Managed.Kernels.Reference;

/// <summary>
/// L2ViT's mixers (<see cref="L2VitAttention"/>) in fp64, written from the paper's and its
/// code's definitions apart from the kernels: the global weights materialized,
/// w_ij = tau_h phi(q_i) . phi(k_j) / max(sum_s phi(q_i) . phi(k_s), floor); the local
/// concentration module as direct convolution loops with the exact GELU; window attention as a
/// dense softmax over the keys of the query's window block.
/// </summary>
public static class ReferenceL2Vit
{
    /// <summary>The global attention output (batch, heads, length, valueDim).</summary>
    public static double[] Global(LinearAttentionShape s, double[] phiQ, double[] phiK,
        double[] v, double[] temperature, double floor)
    {
        int n = s.Length, f = s.Features, group = s.Heads / s.KvHeads;
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
                    sum += w[(bh * n + i) * n + j] = dot;
                }
                for (int j = 0; j < n; j++)
                    w[(bh * n + i) * n + j] *= temperature[h] / Math.Max(sum, floor);
            }
        }
        return ReferenceVision.Mix(s, w, v);
    }

    /// <summary>LCM(x) = conv2(BN(GELU(conv1 x))) for x (batch, heads, height x width, dim).
    /// </summary>
    public static double[] LocalConcentration(int batch, int heads, int height, int width,
        int dim, double[] x, L2VitLcmWeights lcm)
    {
        var hidden = ReferenceVision.DepthwiseConv(batch * heads, heads, height, width, dim, 0,
            x, lcm.Kernel, lcm.Conv1, lcm.Bias1, perItem: false);
        for (int e = 0; e < hidden.Length; e++)
        {
            int ch = e / dim / (height * width) % heads * dim + e % dim;
            double g = 0.5 * hidden[e] * (1 + ReferenceVision.Erf(hidden[e] / Math.Sqrt(2)));
            hidden[e] = g * lcm.Scale[ch] + lcm.Shift[ch];
        }
        return ReferenceVision.DepthwiseConv(batch * heads, heads, height, width, dim, 0,
            hidden, lcm.Kernel, lcm.Conv2, lcm.Bias2, perItem: false);
    }

    /// <summary>Softmax attention within window x window blocks of the grid (border blocks
    /// truncated): Q (batch, heads, length, d), K (batch, kvHeads, length, d), V (batch,
    /// kvHeads, length, dv).</summary>
    public static double[] Window(int batch, int heads, int kvHeads, int height, int width,
        int window, int d, int dv, double[] q, double[] k, double[] v, double scale)
    {
        int n = height * width, group = heads / kvHeads;
        var o = new double[(long)batch * heads * n * dv];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        {
            long bh = (long)b * heads + h, kv = (long)b * kvHeads + h / group;
            for (int i = 0; i < n; i++)
            {
                int by = i / width / window, bx = i % width / window;
                var keys = Enumerable.Range(0, n)
                    .Where(j => j / width / window == by && j % width / window == bx).ToArray();
                var logits = keys.Select(j =>
                {
                    double dot = 0;
                    for (int x = 0; x < d; x++)
                        dot += q[(bh * n + i) * d + x] * k[(kv * n + j) * d + x];
                    return dot * scale;
                }).ToArray();
                double max = logits.Max(), total = logits.Sum(l => Math.Exp(l - max));
                for (int t = 0; t < keys.Length; t++)
                {
                    double p = Math.Exp(logits[t] - max) / total;
                    for (int c = 0; c < dv; c++)
                        o[(bh * n + i) * dv + c] += p * v[(kv * n + keys[t]) * dv + c];
                }
            }
        }
        return o;
    }
}
