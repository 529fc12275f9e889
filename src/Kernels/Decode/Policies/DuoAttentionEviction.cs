namespace Managed.Kernels.Decode.Policies;

/// <summary>
/// DuoAttention (catalog H6; Xiao et al., <i>DuoAttention: Efficient Long-Context LLM
/// Inference with Retrieval and Streaming Heads</i>): retrieval heads keep the full KV cache;
/// streaming heads keep a constant-size cache of the first <see cref="Sinks"/> tokens and the
/// most recent <see cref="Window"/> tokens (StreamingLLM's pattern). The paper finds the roles
/// by optimising a per-head gate on synthetic passkey data and thresholding it; here they are
/// given. Roles are per KV head, because the query heads sharing a KV head share its cache
/// (for GQA models the paper likewise decides per KV head). A streaming head whose window
/// covers its tokens keeps everything, so it stays exact.
/// </summary>
public readonly struct DuoAttentionEviction : IKvPolicy
{
    private readonly bool[] _retrieval;

    /// <summary>Roles per KV head (true: retrieval), and the streaming heads' sink count
    /// &gt;= 0 and recent window &gt;= 1.</summary>
    /// <exception cref="ArgumentNullException">retrievalHeads is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">sinks is negative or window is not
    /// positive.</exception>
    public DuoAttentionEviction(bool[] retrievalHeads, int sinks, int window)
    {
        ArgumentNullException.ThrowIfNull(retrievalHeads);
        ArgumentOutOfRangeException.ThrowIfNegative(sinks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(window);
        (_retrieval, Sinks, Window) = ((bool[])retrievalHeads.Clone(), sinks, window);
    }

    /// <summary>Initial tokens a streaming head keeps.</summary>
    public int Sinks { get; }

    /// <summary>Most recent tokens a streaming head keeps.</summary>
    public int Window { get; }

    /// <summary>Whether KV head <paramref name="kvHead"/> is a retrieval head.</summary>
    public bool IsRetrieval(int kvHead) => _retrieval[kvHead];

    /// <summary>Streaming heads keep their first Sinks and last Window rows; retrieval heads
    /// keep all.</summary>
    /// <exception cref="ArgumentException">The roles are for another number of KV heads, or
    /// the policy is a default instance.</exception>
    public void Apply<TStorage>(KvCache<TStorage> cache) where TStorage : unmanaged
    {
        if (_retrieval is null)
            throw new ArgumentException("A default DuoAttentionEviction has no head roles.");
        KeptSlots.CheckHeads(cache, _retrieval, "retrievalHeads");
        var retrieval = _retrieval;
        int window = Window;
        KeptSlots.SinksAndRecent(cache, Sinks, (_, h) => retrieval[h] ? int.MaxValue : window,
            compensate: false);
    }
}
