using Managed.Kernels.LinearAttention;

namespace Managed.Kernels.Reference;

/// <summary>
/// Linear attention in double precision, the naive quadratic form: for every query t and every
/// key s it reads (all keys, or s &lt;= t when causal), w = lambda^(t-s) phi(q_t) . phi(k_s),
/// o_t = sum w v_s, divided by sum w when normalized (0 when that sum is 0). No chunks, no
/// state: shares no code with <see cref="ChunkedLinearAttention"/>. O(N^2 (F + Dv)).
/// </summary>
public static class ReferenceLinearAttention
{
    /// <summary>Output (batch, heads, length, valueDim) in double; <paramref name="decay"/>
    /// empty or one lambda per KV head; <paramref name="initialS"/> / <paramref name="initialZ"/>
    /// empty or a state (batch, kvHeads, features, valueDim) / (batch, kvHeads, features) that
    /// every causal query also reads, decayed by lambda^(t+1).</summary>
    public static double[] Forward(LinearAttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, ReadOnlySpan<float> decay,
        bool causal, bool normalize, ReadOnlySpan<float> initialS = default,
        ReadOnlySpan<float> initialZ = default)
    {
        shape.Validate();
        int n = shape.Length, f = shape.Features, dv = shape.ValueDim, g = shape.GroupSize;
        var output = new double[shape.OutputLength];
        var o = new double[dv];
        for (int b = 0; b < shape.Batch; b++)
            for (int h = 0; h < shape.Heads; h++)
            {
                int kvh = h / g, item = b * shape.KvHeads + kvh;
                double lambda = decay.IsEmpty ? 1.0 : decay[kvh];
                for (int t = 0; t < n; t++)
                {
                    var qt = query.Slice(((b * shape.Heads + h) * n + t) * f, f);
                    Array.Clear(o);
                    double sum = 0;
                    if (!initialS.IsEmpty)
                    {
                        double w = Math.Pow(lambda, t + 1);
                        for (int x = 0; x < f; x++)
                        {
                            double qx = qt[x] * w;
                            for (int c = 0; c < dv; c++)
                                o[c] += qx * initialS[(item * f + x) * dv + c];
                            sum += qx * initialZ[item * f + x];
                        }
                    }
                    int last = causal ? t : n - 1;
                    for (int s = 0; s <= last; s++)
                    {
                        var ks = key.Slice((item * n + s) * f, f);
                        double dot = 0;
                        for (int x = 0; x < f; x++) dot += (double)qt[x] * ks[x];
                        double w = Math.Pow(lambda, t - s) * dot;
                        var vs = value.Slice((item * n + s) * dv, dv);
                        for (int c = 0; c < dv; c++) o[c] += w * vs[c];
                        sum += w;
                    }
                    var target = output.AsSpan(((b * shape.Heads + h) * n + t) * dv, dv);
                    for (int c = 0; c < dv; c++)
                        target[c] = !normalize ? o[c] : sum == 0 ? 0 : o[c] / sum;
                }
            }
        return output;
    }
}
