
namespace Managed.Kernels.Attention;

/// <summary>
/// The problem size of one attention call: Q (batch, heads, seqQ, headDim), K (batch, kvHeads,
/// seqK, headDim), V (batch, kvHeads, seqK, valueDim), output (batch, heads, seqQ, valueDim),
/// log-sum-exp (batch, heads, seqQ): dense row-major unless <see cref="AttentionLayout"/> gives
/// strides. heads must be a multiple of kvHeads (GQA; kvHeads = 1 is MQA).
/// </summary>
public readonly record struct AttentionShape(
    int Batch, int Heads, int KvHeads, int SeqQ, int SeqK, int HeadDim, int ValueDim)
{
    /// <summary>Self attention with equal head counts and dims.</summary>
    public static AttentionShape Self(int batch, int heads, int seq, int headDim) =>
        new(batch, heads, heads, seq, seq, headDim, headDim);

    /// <summary>Query heads sharing one KV head: heads / kvHeads.</summary>
    public int GroupSize => Heads / KvHeads;

    /// <summary>batch * heads * seqQ * headDim</summary>
    public long QueryLength => (long)Batch * Heads * SeqQ * HeadDim;
    /// <summary>batch * kvHeads * seqK * headDim</summary>
    public long KeyLength => (long)Batch * KvHeads * SeqK * HeadDim;
    /// <summary>batch * kvHeads * seqK * valueDim</summary>
    public long ValueLength => (long)Batch * KvHeads * SeqK * ValueDim;
    /// <summary>batch * heads * seqQ * valueDim</summary>
    public long OutputLength => (long)Batch * Heads * SeqQ * ValueDim;
    /// <summary>batch * heads * seqQ</summary>
    public long LogSumExpLength => (long)Batch * Heads * SeqQ;

    /// <summary>Offset added to a query row index to get its position on the key axis.</summary>
    public int QueryOffset(QueryAlignment alignment) =>
        alignment == QueryAlignment.BottomRight ? SeqK - SeqQ : 0;

    /// <summary>Dense FLOPs of the two products: 2*B*Hq*Nq*Nk*(D + Dv).</summary>
    public double DenseFlops => 2.0 * Batch * Heads * SeqQ * SeqK * ((double)HeadDim + ValueDim);

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not valid.</summary>
    public void Validate(string paramName = "shape")
    {
        Positive(Batch, nameof(Batch), paramName);
        Positive(Heads, nameof(Heads), paramName);
        Positive(KvHeads, nameof(KvHeads), paramName);
        Positive(SeqQ, nameof(SeqQ), paramName);
        Positive(SeqK, nameof(SeqK), paramName);
        Positive(HeadDim, nameof(HeadDim), paramName);
        Positive(ValueDim, nameof(ValueDim), paramName);
        if (Heads % KvHeads != 0)
            throw new ArgumentException(
                $"Heads ({Heads}) must be a multiple of KvHeads ({KvHeads}) for grouped-query attention.",
                paramName);
    }

    private static void Positive(int value, string dim, string paramName)
    {
        if (value <= 0)
            throw new ArgumentException($"{dim} must be positive, got {value}.", paramName);
    }

    /// <summary>Throws unless <paramref name="actual"/> equals <paramref name="expected"/>.</summary>
    internal static void CheckLength(long actual, long expected, string name, string layout)
    {
        if (actual != expected)
            throw new ArgumentException(
                $"{name} has {actual} elements; expected {expected} = {layout}.", name);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} Hq={Heads} Hkv={KvHeads} Nq={SeqQ} Nk={SeqK} D={HeadDim} Dv={ValueDim}";
}
