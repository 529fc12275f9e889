namespace Managed.Kernels.LinearAttention;

/// <summary>
/// The size of one linear-attention call over mapped features: phi(Q) (batch, heads, length,
/// features), phi(K) (batch, kvHeads, length, features), V (batch, kvHeads, length, valueDim),
/// output (batch, heads, length, valueDim), dense row-major. heads must be a multiple of
/// kvHeads (GQA: the query heads of a KV head read one state).
/// </summary>
public readonly record struct LinearAttentionShape(
    int Batch, int Heads, int KvHeads, int Length, int Features, int ValueDim)
{
    /// <summary>Query heads sharing one KV head: heads / kvHeads.</summary>
    public int GroupSize => Heads / KvHeads;

    /// <summary>batch * heads * length * features</summary>
    public long QueryLength => (long)Batch * Heads * Length * Features;
    /// <summary>batch * kvHeads * length * features</summary>
    public long KeyLength => (long)Batch * KvHeads * Length * Features;
    /// <summary>batch * kvHeads * length * valueDim</summary>
    public long ValueLength => (long)Batch * KvHeads * Length * ValueDim;
    /// <summary>batch * heads * length * valueDim</summary>
    public long OutputLength => (long)Batch * Heads * Length * ValueDim;
    /// <summary>batch * kvHeads * features * valueDim: the state S of every sequence and KV head.
    /// </summary>
    public long StateLength => (long)Batch * KvHeads * Features * ValueDim;

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not valid.</summary>
    public void Validate(string paramName = "shape")
    {
        Positive(Batch, nameof(Batch), paramName);
        Positive(Heads, nameof(Heads), paramName);
        Positive(KvHeads, nameof(KvHeads), paramName);
        Positive(Length, nameof(Length), paramName);
        Positive(Features, nameof(Features), paramName);
        Positive(ValueDim, nameof(ValueDim), paramName);
        if (Heads % KvHeads != 0)
            throw new ArgumentException(
                $"Heads ({Heads}) must be a multiple of KvHeads ({KvHeads}).", paramName);
        if (QueryLength > int.MaxValue || KeyLength > int.MaxValue || OutputLength > int.MaxValue
            || StateLength > int.MaxValue)
            throw new ArgumentException(
                $"{this} has a tensor of more than {int.MaxValue} elements.", paramName);
    }

    private static void Positive(int value, string dim, string paramName)
    {
        if (value <= 0)
            throw new ArgumentException($"{dim} must be positive, got {value}.", paramName);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} Hq={Heads} Hkv={KvHeads} N={Length} F={Features} Dv={ValueDim}";
}
