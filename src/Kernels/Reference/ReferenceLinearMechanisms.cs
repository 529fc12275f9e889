using Managed.Kernels.LinearAttention;

namespace Managed.Kernels.Reference;

/// <summary>
/// fp64 references of the linear mechanisms, written from the papers' definitions with every
/// N x N weight matrix materialized (small shapes only), sharing no code with the kernels.
/// Tensors are dense row-major (batch, heads or kvHeads, length, dim); query head h reads KV
/// head h / (heads / kvHeads).
/// </summary>
public static class ReferenceLinearMechanisms
{
    /// <summary>The (length x length) weight matrix of every (batch, head) built by
    /// <paramref name="weights"/>(bh, kv) per (batch, head) item, and O = W V.</summary>
    private static double[] Apply(LinearAttentionShape s, double[] v,
        Func<long, long, double[,]> weights)
    {
        int n = s.Length, dv = s.ValueDim, group = s.Heads / s.KvHeads;
        var o = new double[s.OutputLength];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long bh = (long)b * s.Heads + h, kv = (long)b * s.KvHeads + h / group;
            var w = weights(bh, kv);
            for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            for (int c = 0; c < dv; c++)
                o[(bh * n + i) * dv + c] += w[i, j] * v[(kv * n + j) * dv + c];
        }
        return o;
    }

    private static double Dot(double[] a, long ra, double[] b, long rb, int d)
    {
        double sum = 0;
        for (int x = 0; x < d; x++) sum += a[ra * d + x] * b[rb * d + x];
        return sum;
    }

    /// <summary>Decayed causal linear attention, O = [(Q K^T) (.) M] V with
    /// M_ij = lambda_kv^(i - j) for j &lt;= i (no decay: empty).</summary>
    public static double[] Lightning(LinearAttentionShape s, double[] q, double[] k,
        double[] v, float[] decay) =>
        Apply(s, v, (bh, kv) =>
        {
            int n = s.Length, f = s.Features;
            double lambda = decay.Length == 0 ? 1 : decay[kv % s.KvHeads];
            var w = new double[n, n];
            for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
                w[i, j] = Math.Pow(lambda, i - j) * Dot(q, bh * n + i, k, kv * n + j, f);
            return w;
        });

    /// <summary>The token-by-token recurrence S_t = lambda S_(t-1) + k_t v_t^T, o_t = q_t S_t.
    /// </summary>
    public static double[] LightningRecurrence(LinearAttentionShape s, double[] q, double[] k,
        double[] v, float[] decay)
    {
        int n = s.Length, f = s.Features, dv = s.ValueDim, group = s.Heads / s.KvHeads;
        var o = new double[s.OutputLength];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long bh = (long)b * s.Heads + h, kv = (long)b * s.KvHeads + h / group;
            double lambda = decay.Length == 0 ? 1 : decay[h / group];
            var state = new double[f, dv];
            for (int t = 0; t < n; t++)
            {
                for (int x = 0; x < f; x++)
                for (int c = 0; c < dv; c++)
                    state[x, c] = lambda * state[x, c]
                        + k[(kv * n + t) * f + x] * v[(kv * n + t) * dv + c];
                for (int x = 0; x < f; x++)
                for (int c = 0; c < dv; c++)
                    o[(bh * n + t) * dv + c] += q[(bh * n + t) * f + x] * state[x, c];
            }
        }
        return o;
    }

    /// <summary>Hedgehog's map in double: [exp(W_h x + b_h), exp(-W_h x - b_h)] per row,
    /// weights (heads, m, dim + 1).</summary>
    public static double[] HedgehogFeatures(int rows, int heads, int length, int dim, int m,
        double[] x, float[] weights)
    {
        var phi = new double[(long)rows * 2 * m];
        for (int r = 0; r < rows; r++)
        {
            int h = r / length % heads;
            for (int u = 0; u < m; u++)
            {
                int w0 = (h * m + u) * (dim + 1);
                double z = weights[w0 + dim];
                for (int i = 0; i < dim; i++) z += weights[w0 + i] * x[(long)r * dim + i];
                phi[(long)r * 2 * m + u] = Math.Exp(z);
                phi[(long)r * 2 * m + m + u] = Math.Exp(-z);
            }
        }
        return phi;
    }

    /// <summary>Division-normalized linear attention over mapped features, causal or not:
    /// w_ij = phi(q_i) . phi(k_j) / sum_s phi(q_i) . phi(k_s).</summary>
    public static double[] Normalized(LinearAttentionShape s, double[] phiQ, double[] phiK,
        double[] v, bool causal) =>
        Apply(s, v, (bh, kv) =>
        {
            int n = s.Length, f = s.Features;
            var w = new double[n, n];
            for (int i = 0; i < n; i++)
            {
                double sum = 0;
                for (int j = 0; j < n; j++)
                    if (!causal || j <= i)
                        sum += w[i, j] = Dot(phiQ, bh * n + i, phiK, kv * n + j, f);
                for (int j = 0; j < n; j++) w[i, j] /= sum;
            }
            return w;
        });

    /// <summary>InLine: w_ij = phi(q_i) . phi(k_j) - (1/N) sum_s phi(q_i) . phi(k_s) + 1/N.
    /// </summary>
    public static double[] InLine(LinearAttentionShape s, double[] phiQ, double[] phiK,
        double[] v) =>
        Apply(s, v, (bh, kv) =>
        {
            int n = s.Length, f = s.Features;
            var w = new double[n, n];
            for (int i = 0; i < n; i++)
            {
                double sum = 0;
                for (int j = 0; j < n; j++)
                    sum += w[i, j] = Dot(phiQ, bh * n + i, phiK, kv * n + j, f);
                for (int j = 0; j < n; j++) w[i, j] += (1 - sum) / n;
            }
            return w;
        });

    /// <summary>Flow-Attention materialized: capacities C_ij = sigmoid(q_i) . sigmoid(k_j),
    /// I_i = sum_j C_ij, O_j = sum_i C_ij, Ihat_i = sum_j C_ij / O_j, Ohat_j = sum_i C_ij / I_i,
    /// R_i = sigmoid(Ihat_i) sum_j (C_ij / I_i) softmax(Ohat)_j N v_j. Returns R and the
    /// conserved flows (Ihat (batch, heads, length), then Ohat).</summary>
    public static (double[] Output, double[] Conserved) Flow(LinearAttentionShape s,
        double[] q, double[] k, double[] v)
    {
        int n = s.Length, f = s.Features, dv = s.ValueDim;
        long items = (long)s.Batch * s.Heads;
        var o = new double[s.OutputLength];
        var conserved = new double[2 * items * n];
        static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
        for (long it = 0; it < items; it++)
        {
            var c = new double[n, n];
            for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double dot = 0;
                for (int x = 0; x < f; x++)
                    dot += Sigmoid(q[(it * n + i) * f + x]) * Sigmoid(k[(it * n + j) * f + x]);
                c[i, j] = dot;
            }
            var inc = new double[n];
            var outg = new double[n];
            for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                inc[i] += c[i, j];
                outg[j] += c[i, j];
            }
            var inHat = new double[n];
            var outHat = new double[n];
            for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                inHat[i] += c[i, j] / outg[j];
                outHat[j] += c[i, j] / inc[i];
            }
            double max = outHat.Max(), total = outHat.Sum(x => Math.Exp(x - max));
            for (int i = 0; i < n; i++)
            {
                double allocation = Sigmoid(inHat[i]);
                for (int j = 0; j < n; j++)
                {
                    double w = allocation * c[i, j] / inc[i] * Math.Exp(outHat[j] - max) / total
                        * n;
                    for (int col = 0; col < dv; col++)
                        o[(it * n + i) * dv + col] += w * v[(it * n + j) * dv + col];
                }
                conserved[it * n + i] = inHat[i];
                conserved[items * n + it * n + i] = outHat[i];
            }
        }
        return (o, conserved);
    }
}
