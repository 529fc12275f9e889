using Managed.Kernels.LinearAttention;

namespace Managed.Kernels.Reference;

/// <summary>Causal Flow-Attention materialized in fp64 (the kernels' form is in
/// FlowAttention.Causal.cs): capacities C_ij = sigmoid(q_i) . sigmoid(k_j) for j &lt;= i,
/// c_i = i + 1 tokens in each prefix, I_i = sum_{j&lt;=i} C_ij, O_j = sum_{t&lt;=j} C_tj,
/// Ihat_i = sum_{j&lt;=i} C_ij c_j / O_j / c_i, Ohat_j = sum_{t&lt;=j} C_tj c_t / I_t / c_j,
/// w_j = exp(Ohat_j) / sum_{t&lt;=j} exp(Ohat_t) c_j,
/// R_i = sigmoid(Ihat_i) sum_{j&lt;=i} (C_ij / I_i) w_j v_j.</summary>
public static class ReferenceCausalFlow
{
    /// <summary>R (batch, heads, length, valueDim) and the conserved flows (Ihat (batch,
    /// heads, length), then Ohat).</summary>
    public static (double[] Output, double[] Conserved) Forward(LinearAttentionShape s,
        double[] q, double[] k, double[] v)
    {
        int n = s.Length, f = s.Features, dv = s.ValueDim;
        long items = (long)s.Batch * s.Heads;
        var o = new double[s.OutputLength];
        var conserved = new double[2 * items * n];
        static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
        for (long it = 0; it < items; it++)
        {
            // C[i, t] with t <= i: the capacity between query i and key t.
            var cap = new double[n, n];
            for (int i = 0; i < n; i++)
            for (int t = 0; t <= i; t++)
            {
                double dot = 0;
                for (int x = 0; x < f; x++)
                    dot += Sigmoid(q[(it * n + i) * f + x]) * Sigmoid(k[(it * n + t) * f + x]);
                cap[i, t] = dot;
            }
            // O_j sums the capacities of key j towards queries t <= j: phi(k_j) . phi(q_t),
            // the capacity of query j and key t with the roles swapped.
            var swapped = new double[n, n];
            for (int j = 0; j < n; j++)
            for (int t = 0; t <= j; t++)
            {
                double dot = 0;
                for (int x = 0; x < f; x++)
                    dot += Sigmoid(k[(it * n + j) * f + x]) * Sigmoid(q[(it * n + t) * f + x]);
                swapped[j, t] = dot;
            }
            var inc = new double[n];
            var outg = new double[n];
            for (int i = 0; i < n; i++)
            for (int t = 0; t <= i; t++)
            {
                inc[i] += cap[i, t];
                outg[i] += swapped[i, t];
            }
            var inHat = new double[n];
            var outHat = new double[n];
            for (int i = 0; i < n; i++)
            {
                for (int t = 0; t <= i; t++)
                {
                    inHat[i] += cap[i, t] * (t + 1) / outg[t];
                    outHat[i] += swapped[i, t] * (t + 1) / inc[t];
                }
                inHat[i] /= i + 1;
                outHat[i] /= i + 1;
            }
            var w = new double[n];
            for (int j = 0; j < n; j++)
            {
                double max = double.NegativeInfinity;
                for (int t = 0; t <= j; t++) max = Math.Max(max, outHat[t]);
                double total = 0;
                for (int t = 0; t <= j; t++) total += Math.Exp(outHat[t] - max);
                w[j] = Math.Exp(outHat[j] - max) / total * (j + 1);
            }
            for (int i = 0; i < n; i++)
            {
                double allocation = Sigmoid(inHat[i]);
                for (int j = 0; j <= i; j++)
                {
                    double weight = allocation * cap[i, j] / inc[i] * w[j];
                    for (int col = 0; col < dv; col++)
                        o[(it * n + i) * dv + col] += weight * v[(it * n + j) * dv + col];
                }
                conserved[it * n + i] = inHat[i];
                conserved[items * n + it * n + i] = outHat[i];
            }
        }
        return (o, conserved);
    }
}
