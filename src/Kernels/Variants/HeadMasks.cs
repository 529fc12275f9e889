
namespace Managed.Kernels.Variants;

/// <summary>
/// S2-Attention's heterogeneous context sharding (F7, ‡ definition recalled): head h sees
/// key k iff k &lt;= q and (q - k &lt; local or k ≡ h (mod s)). Heads h and h + s share a
/// shard; the union over s consecutive heads is the causal mask, and s = 1 is causal attention.
/// default(StridedShardMask) has no stride (s = 0): entry points reject it.
/// </summary>
public readonly struct StridedShardMask : IMaskPredicate, IValidated
{
    private readonly int _stride, _local;

    /// <summary>Stride <paramref name="stride"/> &gt;= 1 and a dense local window of
    /// <paramref name="local"/> &gt;= 0 keys.</summary>
    public StridedShardMask(int stride, int local)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(stride);
        ArgumentOutOfRangeException.ThrowIfNegative(local);
        (_stride, _local) = (stride, local);
    }

    /// <summary>0</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>q1: keys after the last query are never allowed.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => q1;

    /// <summary>The stride is missing (default) or &lt; 1, or local &lt; 0.</summary>
    public string? ParameterError() =>
        _stride < 1 ? VariantChecks.Missing(nameof(StridedShardMask), "stride", _stride, ">= 1",
            isDefault: _stride == 0 && _local == 0)
        : _local < 0
            ? VariantChecks.Missing(nameof(StridedShardMask), "local", _local, ">= 0", false)
        : null;

    /// <summary>k &lt;= q and (q - k &lt; local or (k - h) mod s = 0)</summary>
    public bool Allows(int batch, int head, int q, int k) =>
        k <= q && (q - k < _local || MaskMath.Mod(k - head, _stride) == 0);

    /// <summary>
    /// Exact Empty: no local pair and no shard key at or before the last query. Full below the
    /// diagonal when the window covers the tile, s = 1, or the tile's one key is in the shard.
    /// </summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        bool localAny = (q1 - 1) - k0 >= 0 && q0 - (k1 - 1) <= _local - 1;
        int first = k0 + MaskMath.Mod(head - k0, _stride);
        bool shardAny = first < k1 && first <= q1 - 1;
        bool all = k1 - 1 <= q0 && ((q1 - 1) - k0 < _local || _stride == 1
            || (k1 - k0 == 1 && MaskMath.Mod(k0 - head, _stride) == 0));
        return MaskMath.Kind(localAny || shardAny, all);
    }
}

/// <summary>
/// MoA per-head heterogeneous windows (F8): head h uses <see cref="SinkWindowMask"/>(sinks,
/// w_(h mod n)) with up to four window lengths w_0..w_3. MoA's elastic span α_h + β_h N
/// (‡) is evaluated on the host for a given N by <see cref="Elastic"/>. Classify is exact.
/// default(MoaMask) has no window (none of the 1..4 windows given): entry points reject it.
/// </summary>
public readonly struct MoaMask : IMaskPredicate, IValidated
{
    private readonly int _sinks, _count, _w0, _w1, _w2, _w3;

    /// <summary><paramref name="sinks"/> sink keys and the windows of heads h mod n = 0..3
    /// (n = number of windows given, 1..4; each &gt;= 1).</summary>
    public MoaMask(int sinks, int w0, int w1 = 0, int w2 = 0, int w3 = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sinks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(w0);
        int count = w1 <= 0 ? 1 : w2 <= 0 ? 2 : w3 <= 0 ? 3 : 4;
        (_sinks, _count, _w0, _w1, _w2, _w3) = (sinks, count, w0, w1, w2, w3);
    }

    /// <summary>Windows span_i = max(1, round(α_i + β_i N)) for sequence length N.</summary>
    public static MoaMask Elastic(int sinks, int length, ReadOnlySpan<(float Alpha, float Beta)> spans)
    {
        if (spans.Length is < 1 or > 4)
            throw new ArgumentException("MoA takes 1 to 4 (alpha, beta) spans.", nameof(spans));
        Span<int> w = stackalloc int[4];
        for (int i = 0; i < spans.Length; i++)
            w[i] = Math.Max(1, (int)MathF.Round(spans[i].Alpha + spans[i].Beta * length));
        return new(sinks, w[0], w[1], w[2], w[3]);
    }

    /// <summary>The windows are missing (default) or the first is &lt; 1.</summary>
    public string? ParameterError() =>
        _count >= 1 && _w0 >= 1 && _sinks >= 0 ? null
        : VariantChecks.Missing(nameof(MoaMask), "window", _w0,
            "1 to 4 windows of >= 1 keys and sinks >= 0",
            isDefault: _count == 0);

    /// <summary>w_(h mod n)</summary>
    public int Window(int head)
    {
        int i = head % _count;
        return i == 0 ? _w0 : i == 1 ? _w1 : i == 2 ? _w2 : _w3;
    }

    /// <summary>0</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>q1: keys after the last query are never allowed.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => q1;

    /// <summary>k &lt;= q and (k &lt; sinks or q - k &lt; w_(h mod n))</summary>
    public bool Allows(int batch, int head, int q, int k) =>
        SinkWindowMask.AllowsFor(_sinks, Window(head), q, k);

    /// <summary>SinkWindowMask's exact classes with the head's window.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        SinkWindowMask.ClassifyFor(_sinks, Window(head), q0, q1, k0, k1);
}

/// <summary>
/// DuoAttention (H6): retrieval heads attend causally to every key, streaming heads to
/// StreamingLLM's sinks + recent window. Head h &lt; 64 is a retrieval head iff bit h of the
/// mask is set; heads &gt;= 64 are streaming heads (a per-head flag array needs device memory:
/// out of scope). All bits set (for H &lt;= 64 heads) is causal attention.
/// default(DuoAttentionMask) has no streaming window (window 0, no retrieval head: nothing is
/// allowed): entry points reject it.
/// </summary>
public readonly struct DuoAttentionMask : IMaskPredicate, IValidated
{
    private readonly ulong _retrieval;
    private readonly int _sinks, _window;

    /// <summary>Retrieval heads <paramref name="retrievalHeads"/> (bit h = head h), streaming
    /// heads with <paramref name="sinks"/> sinks and a window of <paramref name="window"/> keys.</summary>
    public DuoAttentionMask(ulong retrievalHeads, int sinks, int window)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sinks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(window);
        (_retrieval, _sinks, _window) = (retrievalHeads, sinks, window);
    }

    /// <summary>The streaming window is missing (default) or &lt; 1, or sinks &lt; 0.</summary>
    public string? ParameterError() =>
        _window < 1
            ? VariantChecks.Missing(nameof(DuoAttentionMask), "window", _window, ">= 1 keys",
            isDefault: _window == 0 && _sinks == 0 && _retrieval == 0)
        : _sinks < 0
            ? VariantChecks.Missing(nameof(DuoAttentionMask), "sinks", _sinks, ">= 0", false)
        : null;

    /// <summary>h &lt; 64 and bit h set</summary>
    public bool IsRetrieval(int head) => (uint)head < 64u && ((_retrieval >> head) & 1UL) != 0;

    /// <summary>0</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>q1: keys after the last query are never allowed.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => q1;

    /// <summary>Retrieval: k &lt;= q; streaming: k &lt;= q and (k &lt; sinks or q - k &lt; window)</summary>
    public bool Allows(int batch, int head, int q, int k) =>
        IsRetrieval(head) ? k <= q : SinkWindowMask.AllowsFor(_sinks, _window, q, k);

    /// <summary>The exact causal or sink-window class of the head.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        IsRetrieval(head) ? default(CausalMask).Classify(batch, head, q0, q1, k0, k1)
        : SinkWindowMask.ClassifyFor(_sinks, _window, q0, q1, k0, k1);
}
