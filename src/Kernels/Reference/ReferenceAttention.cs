using Managed.Kernels.Variants;
using Managed.Kernels.Attention;

namespace Managed.Kernels.Reference;

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
    /// scores stay in double throughout. Fully masked rows give zeros and -infinity; a row that
    /// attends to a NaN or +infinity modified score gives NaN output and NaN log-sum-exp
    /// (max + ln(sum exp(s - max)) with max = +infinity is NaN, never -infinity).
    /// </summary>
    public static (double[] Output, double[] LogSumExp) Forward<TScore, TMask>(
        AttentionShape shape, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, TScore score, TMask mask, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        Forward(shape, query, key, value, score, mask, default(SoftmaxNormalizer), options);

    /// <summary>
    /// Attention with a softmax replacement in double: w_j from the normalizer's
    /// <see cref="INormalizer.ReferenceWeight"/> given the row's exact softmax log-sum-exp,
    /// O = sum_j w_j v_j (divided by sum_j w_j when it l1-normalizes; 0 when the sum is 0),
    /// and ln(sum_j w_j) per row (-infinity for a zero sum, NaN for a NaN sum): the log-sum-exp
    /// for softmax. A NaN weight (a NaN score; any score of a row whose softmax log-sum-exp is
    /// NaN, for clipped softmax) makes the row's output and log-sum-exp NaN.
    /// </summary>
    public static (double[] Output, double[] LogSumExp) Forward<TScore, TMask, TNorm>(
        AttentionShape shape, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, TScore score, TMask mask, TNorm normalizer,
        AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        FlashAttention.ValidateCall(shape, query.Length, key.Length, value.Length,
            shape.OutputLength, 0, options);
        VariantChecks.Validate(score, shape, onDevice: false, nameof(score));
        VariantChecks.Validate(mask, shape, onDevice: false, nameof(mask));
        int d = shape.HeadDim, dv = shape.ValueDim, nq = shape.SeqQ, nk = shape.SeqK;
        double scale = options.Scale is { } s ? s : 1.0 / Math.Sqrt(d);
        int offset = options.QueryOffsetFor(shape);
        bool identity = typeof(TScore) == typeof(NoScore);
        var output = new double[shape.OutputLength];
        var lse = new double[shape.LogSumExpLength];
        // Rows are independent: one row per iteration, each with its own score buffer.
        // Spans cannot cross into the parallel loop, so the inputs are copied once.
        float[] qa = query.ToArray(), ka = key.ToArray(), va = value.ToArray();
        Parallel.For(0, shape.Batch * shape.Heads * nq, () => (new double[nk], new bool[nk]),
            (row, _, buffers) =>
            {
                var (logits, allowed) = buffers;
                int i = row % nq, bh = row / nq, h = bh % shape.Heads, b = bh / shape.Heads;
                int kvh = h / shape.GroupSize;
                long qBase = (long)bh * nq;
                long kvBase = ((long)b * shape.KvHeads + kvh) * nk;
                int pos = i + offset;
                double max = double.NegativeInfinity;
                for (int j = 0; j < nk; j++)
                {
                    allowed[j] = mask.Allows(b, h, pos, j);
                    if (!allowed[j]) continue;
                    double dot = 0;
                    for (int c = 0; c < d; c++)
                        dot += (double)qa[(qBase + i) * d + c] * ka[(kvBase + j) * d + c];
                    double x = dot * scale;
                    if (!identity) x = score.Apply((float)x, b, h, pos, j);
                    logits[j] = x;
                    if (double.IsNaN(x) || x > max) max = double.IsNaN(max) ? max : x;
                }
                long oRow = (qBase + i) * dv;
                if (double.IsNegativeInfinity(max))
                {
                    lse[qBase + i] = double.NegativeInfinity; // no allowed key: zeros, -inf
                    return buffers;
                }
                double sum = 0;
                for (int j = 0; j < nk; j++)
                    if (allowed[j]) sum += Math.Exp(logits[j] - max);
                double softmaxLse = max + Math.Log(sum);
                if (TNorm.IsSoftmax)
                {
                    for (int j = 0; j < nk; j++)
                    {
                        if (!allowed[j]) continue;
                        double p = Math.Exp(logits[j] - max);
                        for (int c = 0; c < dv; c++)
                            output[oRow + c] += p * va[(kvBase + j) * dv + c];
                    }
                    for (int c = 0; c < dv; c++) output[oRow + c] /= sum;
                    lse[qBase + i] = softmaxLse;
                    return buffers;
                }
                double weights = 0;
                for (int j = 0; j < nk; j++)
                {
                    if (!allowed[j]) continue;
                    double w = normalizer.ReferenceWeight(logits[j], pos, softmaxLse);
                    weights += w;
                    for (int c = 0; c < dv; c++)
                        output[oRow + c] += w * va[(kvBase + j) * dv + c];
                }
                // Weights are >= 0: a zero sum is a row with no weight; a NaN sum stays NaN.
                if (TNorm.DividesBySum)
                    for (int c = 0; c < dv; c++)
                        output[oRow + c] = weights == 0 ? 0 : output[oRow + c] / weights;
                lse[qBase + i] = weights == 0 ? double.NegativeInfinity : Math.Log(weights);
                return buffers;
            }, _ => { });
        return (output, lse);
    }
}
