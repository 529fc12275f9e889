using System.Numerics.Tensors;

namespace Managed.Bench;

/// <summary>
/// The baseline: materialized scores per head, S = scale Q K^T row by row with
/// TensorPrimitives.Dot, row softmax with TensorPrimitives.SoftMax, then O = P V with
/// TensorPrimitives.MultiplyAdd. Causal rows only score keys k &lt;= q. Heads run in parallel.
/// </summary>
public static class NaiveAttention
{
    /// <summary>O = softmax(scale Q K^T [+ causal mask]) V, inputs (batch, heads, seq, headDim).
    /// </summary>
    public static void Forward(AttentionCase c, float[] output, int threads)
    {
        int n = c.SeqLen, d = c.HeadDim;
        float scale = 1f / MathF.Sqrt(d);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads };
        Parallel.For(0, c.Batch * c.Heads, parallel,
            () => new float[(long)n * n], // (seq, seq) scores of one head
            (bh, _, scores) =>
            {
                long head = (long)bh * n * d;
                ReadOnlySpan<float> q = c.Q.AsSpan((int)head, n * d),
                    k = c.K.AsSpan((int)head, n * d), v = c.V.AsSpan((int)head, n * d);
                Span<float> o = output.AsSpan((int)head, n * d);
                for (int i = 0; i < n; i++)
                {
                    int keys = c.Causal ? i + 1 : n;
                    Span<float> row = scores.AsSpan(i * n, keys);
                    ReadOnlySpan<float> qi = q.Slice(i * d, d);
                    for (int j = 0; j < keys; j++)
                        row[j] = TensorPrimitives.Dot(qi, k.Slice(j * d, d)) * scale;
                    TensorPrimitives.SoftMax(row, row);
                }
                for (int i = 0; i < n; i++)
                {
                    int keys = c.Causal ? i + 1 : n;
                    ReadOnlySpan<float> p = scores.AsSpan(i * n, keys);
                    Span<float> oi = o.Slice(i * d, d);
                    oi.Clear();
                    for (int j = 0; j < keys; j++)
                        TensorPrimitives.MultiplyAdd(v.Slice(j * d, d), p[j], oi, oi);
                }
                return scores;
            },
            _ => { });
    }
}
