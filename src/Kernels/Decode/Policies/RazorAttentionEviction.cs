namespace Managed.Kernels.Decode.Policies;

/// <summary>
/// RazorAttention (catalog H7; Tang et al., <i>RazorAttention: Efficient KV Cache Compression
/// Through Retrieval Heads</i>): retrieval heads (the paper's echo and induction heads) keep
/// the full cache; every other head keeps N0 = <see cref="Sinks"/> initial tokens, a buffer of
/// the L_h = max(S0, N / C) most recent tokens (S0 = <see cref="MinWindow"/>,
/// C = <see cref="Compression"/>, N the tokens seen) and one compensation token standing for
/// the N_d dropped ones: k̂ and v̂, the means of the dropped keys and values, weighted by N_d in
/// the softmax (eq. 4-5):
/// Attn = (Σ_kept e^(q·k_i) v_i + N_d e^(q·k̂) v̂) / (Σ_kept e^(q·k_i) + N_d e^(q·k̂)).
/// Decode implements the weight as + ln N_d on that row's score. Applied again, the policy
/// folds newly dropped tokens into the same row by the count-weighted mean. Per KV head: the
/// query heads sharing a KV head share its cache. Nothing dropped: no compensation row, exact.
/// </summary>
public readonly struct RazorAttentionEviction : IKvPolicy
{
    private readonly bool[] _retrieval;

    /// <summary>Retrieval KV heads (true: full cache), N0 = <paramref name="sinks"/> &gt;= 0,
    /// S0 = <paramref name="minWindow"/> &gt;= 1, C = <paramref name="compression"/> &gt;= 1.
    /// </summary>
    /// <exception cref="ArgumentNullException">retrievalHeads is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A size is out of range.</exception>
    public RazorAttentionEviction(bool[] retrievalHeads, int sinks, int minWindow,
        double compression)
    {
        ArgumentNullException.ThrowIfNull(retrievalHeads);
        ArgumentOutOfRangeException.ThrowIfNegative(sinks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(minWindow);
        if (!(compression >= 1.0) || double.IsInfinity(compression))
            throw new ArgumentOutOfRangeException(nameof(compression), compression,
                "The compression ratio C must be finite and at least 1.");
        (_retrieval, Sinks, MinWindow, Compression) =
            ((bool[])retrievalHeads.Clone(), sinks, minWindow, compression);
    }

    /// <summary>N0: initial tokens a non-retrieval head keeps.</summary>
    public int Sinks { get; }

    /// <summary>S0: the least recent-buffer length.</summary>
    public int MinWindow { get; }

    /// <summary>C: the compression ratio of the recent buffer, L_h = max(S0, floor(N / C)).
    /// </summary>
    public double Compression { get; }

    /// <summary>Whether KV head <paramref name="kvHead"/> is a retrieval head.</summary>
    public bool IsRetrieval(int kvHead) => _retrieval[kvHead];

    /// <summary>L_h = max(S0, floor(N / C)) for a sequence that has seen
    /// <paramref name="tokens"/> tokens.</summary>
    public int WindowFor(int tokens) => Math.Max(MinWindow, (int)(tokens / Compression));

    /// <summary>Non-retrieval heads keep N0 sinks and L_h recent rows and fold the rest into
    /// their compensation row; retrieval heads keep all.</summary>
    /// <exception cref="ArgumentException">The roles are for another number of KV heads, or
    /// the policy is a default instance.</exception>
    public void Apply<TStorage>(KvCache<TStorage> cache) where TStorage : unmanaged
    {
        if (_retrieval is null)
            throw new ArgumentException("A default RazorAttentionEviction has no head roles.");
        KeptSlots.CheckHeads(cache, _retrieval, "retrievalHeads");
        var retrieval = _retrieval;
        var self = this;
        KeptSlots.SinksAndRecent(cache, Sinks,
            (b, h) => retrieval[h] ? int.MaxValue : self.WindowFor(cache.Length(b)),
            compensate: true);
    }
}
