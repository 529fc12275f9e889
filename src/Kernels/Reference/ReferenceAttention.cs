using Managed.Kernels.Variants;

namespace Managed.Kernels;

/// <summary>
/// Naive attention in double precision: materializes one row of scores at a time, max-shifted
/// softmax, no tiling. Shares no code with the fast kernels; the yardstick every backend and
/// variant is checked against. Slow on purpose: O(seqQ * seqK * headDim) with no blocking.
/// </summary>
public static class ReferenceAttention
{
    /// <summary>
    /// Output (batch, heads, seqQ, valueDim) and log-sum-exp (batch, heads, seqQ) in double.
    /// The score modifier is applied in float (its contract); with <see cref="NoScore"/> the
    /// scores stay in double throughout. Fully masked rows give zeros and -infinity.
    /// </summary>
    public static (double[] Output, double[] LogSumExp) Forward<TScore, TMask>(
        AttentionShape shape, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, TScore score, TMask mask, AttentionOptions options = default)
        where TScore : unmanaged, IScoreModifier
        where TMask : unmanaged, IMaskPredicate
    {
        FlashAttention.ValidateCall(shape, query.Length, key.Length, value.Length,
            shape.OutputLength, 0, options);
        int d = shape.HeadDim, dv = shape.ValueDim, nq = shape.SeqQ, nk = shape.SeqK;
        double scale = options.Scale is { } s ? s : 1.0 / Math.Sqrt(d);
        int offset = shape.QueryOffset(options.Alignment);
        bool identity = typeof(TScore) == typeof(NoScore);
        var output = new double[shape.OutputLength];
        var lse = new double[shape.LogSumExpLength];
        var logits = new double[nk];
        var allowed = new bool[nk];
        for (int b = 0; b < shape.Batch; b++)
        for (int h = 0; h < shape.Heads; h++)
        {
            int kvh = h / shape.GroupSize;
            long qBase = ((long)b * shape.Heads + h) * nq;
            long kvBase = ((long)b * shape.KvHeads + kvh) * nk;
            for (int i = 0; i < nq; i++)
            {
                int pos = i + offset;
                double max = double.NegativeInfinity;
                for (int j = 0; j < nk; j++)
                {
                    allowed[j] = mask.Allows(b, h, pos, j);
                    if (!allowed[j]) continue;
                    double dot = 0;
                    for (int c = 0; c < d; c++)
                        dot += (double)query[(int)((qBase + i) * d + c)] * key[(int)((kvBase + j) * d + c)];
                    double x = dot * scale;
                    if (!identity) x = score.Apply((float)x, b, h, pos, j);
                    logits[j] = x;
                    if (x > max || double.IsNaN(x)) max = double.IsNaN(max) ? max : x;
                }
                long oRow = (qBase + i) * dv;
                if (double.IsNegativeInfinity(max))
                {
                    lse[qBase + i] = double.NegativeInfinity; // no allowed key: zeros, -inf
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < nk; j++)
                {
                    if (!allowed[j]) continue;
                    double p = Math.Exp(logits[j] - max);
                    sum += p;
                    for (int c = 0; c < dv; c++)
                        output[oRow + c] += p * value[(int)((kvBase + j) * dv + c)];
                }
                for (int c = 0; c < dv; c++) output[oRow + c] /= sum;
                lse[qBase + i] = max + Math.Log(sum);
            }
        }
        return (output, lse);
    }
}
