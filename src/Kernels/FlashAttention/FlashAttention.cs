using Managed.Kernels.Variants;

namespace Managed.Kernels;

/// <summary>
/// Exact softmax attention, tiled with an online softmax (FlashAttention), generic over a score
/// modifier and a mask predicate. O[b,h,i] = sum_k softmax_k(mod(scale q_i.k_k)) v_k over the
/// keys the mask allows; rows with no allowed key give O = 0 and log-sum-exp = -infinity.
/// A row that attends to a modified score of NaN or +infinity gives NaN output and NaN
/// log-sum-exp (exp(inf - inf) is NaN); -infinity always means "no weight".
/// <para>
/// Non-finite inputs: NaN or infinity in Q, K or V is not masked away: it propagates (IEEE
/// arithmetic) into a row that attends to it, and may reach rows of the same query tile whose
/// mask disallows that key when the key's tile is only partially masked for that query tile
/// (a masked weight is 0, and 0 * NaN = NaN, as in FlashAttention-2 and PyTorch's SDPA).
/// Keys in tiles the mask classifies Empty for a query tile are never read for that tile, and
/// keys at index &gt;= seqK are never read. Tiles are those of the backend: QueryTile x KeyTile
/// of <see cref="FlashAttentionTuning"/> on the host, the kernel's fixed tiles on ILGPU devices.
/// </para>
/// </summary>
public static partial class FlashAttention
{
    /// <summary>
    /// Attention on the host CPU (SIMD, parallel over batch, heads and query tiles).
    /// Layouts are in <see cref="AttentionShape"/>. <paramref name="logSumExp"/> may be empty
    /// (not wanted) or (batch, heads, seqQ): natural-log log-sum-exp of the modified scores.
    /// </summary>
    /// <exception cref="ArgumentException">A shape, length or option is not valid; thrown
    /// before anything is written.</exception>
    public static void Forward<TScore, TMask>(
        AttentionShape shape, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, Span<float> output, Span<float> logSumExp,
        TScore score, TMask mask, AttentionOptions options = default,
        FlashAttentionTuning? tuning = null)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        Forward(shape, query, key, value, output, logSumExp, score, mask,
            default(SoftmaxNormalizer), options, tuning);

    /// <summary>
    /// Attention with a softmax replacement <paramref name="normalizer"/> on the host CPU:
    /// O_i = sum_j w_ij v_j (divided by sum_j w_ij when the normalizer l1-normalizes), tiled,
    /// no seqQ x seqK buffer. <paramref name="logSumExp"/> (optional) gets ln(sum_j w_ij) per
    /// row: the log-sum-exp for softmax, -infinity for a row with no weight. A normalizer that
    /// needs the softmax log-sum-exp (clipped softmax) runs the kernel twice.
    /// </summary>
    /// <exception cref="ArgumentException">A shape, length or option is not valid; thrown
    /// before anything is written.</exception>
    public static void Forward<TScore, TMask, TNorm>(
        AttentionShape shape, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, Span<float> output, Span<float> logSumExp,
        TScore score, TMask mask, TNorm normalizer, AttentionOptions options = default,
        FlashAttentionTuning? tuning = null)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        tuning ??= FlashAttentionTuning.Default;
        ValidateCall(shape, query.Length, key.Length, value.Length, output.Length,
            logSumExp.Length, options);
        tuning.ValidateCpu();
        ValidateNoOverlap(query, key, value, output, logSumExp);
        VariantChecks.Validate(score, shape, onDevice: false, nameof(score));
        VariantChecks.Validate(mask, shape, onDevice: false, nameof(mask));
        if (!TNorm.NeedsLogSumExp)
        {
            ForwardCpu(shape, query, key, value, output, logSumExp, default, score, mask,
                normalizer, options, tuning);
            return;
        }
        // Pass 1: the softmax log-sum-exp of every row (its output is scratch).
        var stats = new float[shape.LogSumExpLength];
        var scratch = new float[shape.OutputLength];
        ForwardCpu(shape, query, key, value, scratch, stats, default, score, mask,
            default(SoftmaxNormalizer), options, tuning);
        ForwardCpu(shape, query, key, value, output, logSumExp, stats, score, mask,
            normalizer, options, tuning);
    }

    /// <summary>Dense attention, causal or not, on the host CPU.</summary>
    public static void Forward(
        AttentionShape shape, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, Span<float> output, bool causal, AttentionOptions options = default)
    {
        if (causal)
            Forward(shape, query, key, value, output, default, default(NoScore), default(CausalMask), options);
        else
            Forward(shape, query, key, value, output, default, default(NoScore), default(NoMask), options);
    }

    /// <summary>
    /// Throws when an output span overlaps an input or the other output; shared by every
    /// backend's span entry point, so all reject the same calls.
    /// </summary>
    /// <exception cref="ArgumentException">output overlaps query, key or value, or logSumExp
    /// (when not empty) overlaps any other tensor.</exception>
    public static void ValidateNoOverlap(ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, ReadOnlySpan<float> output, ReadOnlySpan<float> logSumExp)
    {
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value))
            throw new ArgumentException("output must not overlap query, key or value.", nameof(output));
        if (!logSumExp.IsEmpty && (logSumExp.Overlaps(query) || logSumExp.Overlaps(key)
            || logSumExp.Overlaps(value) || logSumExp.Overlaps(output)))
            throw new ArgumentException("logSumExp must not overlap the other tensors.", nameof(logSumExp));
    }

    /// <summary>Validates every length of a call against its shape; shared by all backends.</summary>
    public static void ValidateCall(AttentionShape shape, long queryLength, long keyLength,
        long valueLength, long outputLength, long logSumExpLength, AttentionOptions options)
    {
        shape.Validate();
        options.Validate();
        AttentionShape.CheckLength(queryLength, shape.QueryLength, "query",
            $"batch {shape.Batch} x heads {shape.Heads} x seqQ {shape.SeqQ} x headDim {shape.HeadDim}");
        AttentionShape.CheckLength(keyLength, shape.KeyLength, "key",
            $"batch {shape.Batch} x kvHeads {shape.KvHeads} x seqK {shape.SeqK} x headDim {shape.HeadDim}");
        AttentionShape.CheckLength(valueLength, shape.ValueLength, "value",
            $"batch {shape.Batch} x kvHeads {shape.KvHeads} x seqK {shape.SeqK} x valueDim {shape.ValueDim}");
        AttentionShape.CheckLength(outputLength, shape.OutputLength, "output",
            $"batch {shape.Batch} x heads {shape.Heads} x seqQ {shape.SeqQ} x valueDim {shape.ValueDim}");
        if (logSumExpLength != 0)
            AttentionShape.CheckLength(logSumExpLength, shape.LogSumExpLength, "logSumExp",
                $"batch {shape.Batch} x heads {shape.Heads} x seqQ {shape.SeqQ} (or empty)");
    }
}
