using Managed.Kernels.Layouts;

namespace Managed.Kernels.Attention;

/// <summary>
/// Where the rows of Q, K, V and the output lie, and how many keys each sequence has. A tensor
/// without strides is dense (batch, heads, rows, dim) and its span or view must have exactly
/// that many elements; one with strides needs only reach its last row. The log-sum-exp is
/// always dense (batch, heads, seqQ).
/// </summary>
public readonly record struct AttentionLayout
{
    /// <summary>Rows of Q, (batch, heads, seqQ, headDim); null: dense.</summary>
    public RowStrides? Query { get; init; }

    /// <summary>Rows of K, (batch, kvHeads, seqK, headDim); null: dense. A KV cache of
    /// capacity C has Head = C * headDim with seqK = C (and <see cref="KeyLengths"/>).</summary>
    public RowStrides? Key { get; init; }

    /// <summary>Rows of V, (batch, kvHeads, seqK, valueDim); null: dense.</summary>
    public RowStrides? Value { get; init; }

    /// <summary>Rows of the output, (batch, heads, seqQ, valueDim); null: dense. Rows must
    /// not overlap.</summary>
    public RowStrides? Output { get; init; }

    /// <summary>
    /// Keys of each sequence (batch entries), each in [0, seqK]: sequence b attends to keys
    /// [0, KeyLengths[b]) and rows past it are never read. Under bottom-right alignment its query
    /// rows end at its own last key. A sequence with no keys gives zeros and a log-sum-exp of
    /// -infinity. Null: every sequence has seqK keys. Read during the call only.
    /// </summary>
    public int[]? KeyLengths { get; init; }

    /// <summary>Q, K, V and the output in Hugging Face's (batch, seq, heads, dim) order.</summary>
    public static AttentionLayout SequenceMajor(AttentionShape shape) => new()
    {
        Query = RowStrides.SequenceMajor(shape.Heads, shape.SeqQ, shape.HeadDim),
        Key = RowStrides.SequenceMajor(shape.KvHeads, shape.SeqK, shape.HeadDim),
        Value = RowStrides.SequenceMajor(shape.KvHeads, shape.SeqK, shape.ValueDim),
        Output = RowStrides.SequenceMajor(shape.Heads, shape.SeqQ, shape.ValueDim),
    };
}

/// <summary>A call's layout resolved against its shape: concrete strides, key lengths.</summary>
internal readonly struct AttentionGeometry
{
    public readonly RowStrides Q, K, V, O;
    public readonly int[]? KeyLengths;
    /// <summary>Whether query positions follow each sequence's key length (bottom-right
    /// alignment, no explicit position, per-sequence lengths).</summary>
    public readonly bool ShiftByLength;

    private AttentionGeometry(AttentionGeometry g, RowStrides output)
    {
        (Q, K, V, O, KeyLengths, ShiftByLength) = (g.Q, g.K, g.V, output, g.KeyLengths,
            g.ShiftByLength);
    }

    /// <summary>This layout with a dense output (a two-pass normalizer's scratch pass).</summary>
    public AttentionGeometry WithDenseOutput(AttentionShape s) =>
        new(this, RowStrides.HeadMajor(s.Heads, s.SeqQ, s.ValueDim));

    public AttentionGeometry(AttentionShape s, AttentionOptions options)
    {
        var layout = options.Layout;
        Q = layout.Query ?? RowStrides.HeadMajor(s.Heads, s.SeqQ, s.HeadDim);
        K = layout.Key ?? RowStrides.HeadMajor(s.KvHeads, s.SeqK, s.HeadDim);
        V = layout.Value ?? RowStrides.HeadMajor(s.KvHeads, s.SeqK, s.ValueDim);
        O = layout.Output ?? RowStrides.HeadMajor(s.Heads, s.SeqQ, s.ValueDim);
        KeyLengths = layout.KeyLengths;
        ShiftByLength = KeyLengths is not null && options.QueryPosition is null
            && options.Alignment == QueryAlignment.BottomRight;
    }

    /// <summary>Whether every tensor is dense head-major with all seqK keys: the layout of a
    /// call without one.</summary>
    public bool IsDense(AttentionShape s) => KeyLengths is null
        && Q == RowStrides.HeadMajor(s.Heads, s.SeqQ, s.HeadDim)
        && K == RowStrides.HeadMajor(s.KvHeads, s.SeqK, s.HeadDim)
        && V == RowStrides.HeadMajor(s.KvHeads, s.SeqK, s.ValueDim)
        && O == RowStrides.HeadMajor(s.Heads, s.SeqQ, s.ValueDim);

    /// <summary>Keys of sequence <paramref name="batch"/>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public int KeyLength(AttentionShape s, int batch) => KeyLengths?[batch] ?? s.SeqK;

    /// <summary>Position of query row 0 of sequence <paramref name="batch"/>.</summary>
    public int QueryOffset(AttentionShape s, AttentionOptions options, int batch) =>
        options.QueryOffsetFor(s) + (ShiftByLength ? KeyLength(s, batch) - s.SeqK : 0);
}
