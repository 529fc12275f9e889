using System.Runtime.CompilerServices;

namespace Managed.Kernels.Variants;

/// <summary>
/// Sliding window (Longformer, Mistral): q - left &lt;= k &lt;= q + right. The causal sliding
/// window of W keys (the query and the W - 1 before it) is left = W - 1, right = 0
/// (<see cref="Causal"/>). Classify is exact: the tile's offsets k - q fill the interval
/// [k0 - (q1 - 1), (k1 - 1) - q0]. default(SlidingWindowMask) is left = right = 0: each query
/// sees only its own key (the diagonal), a valid window.
/// </summary>
public readonly struct SlidingWindowMask : IMaskPredicate
{
    /// <summary>Row q is [q - left, q + right + 1).</summary>
    public static bool RowIsInterval => true;

    private readonly int _left, _right;

    /// <summary>Window q - <paramref name="left"/> &lt;= k &lt;= q + <paramref name="right"/>;
    /// both extents &gt;= 0.</summary>
    public SlidingWindowMask(int left, int right)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(left);
        ArgumentOutOfRangeException.ThrowIfNegative(right);
        (_left, _right) = (left, right);
    }

    /// <summary>Causal window of <paramref name="window"/> &gt;= 1 keys: q - window &lt; k &lt;= q.</summary>
    public static SlidingWindowMask Causal(int window)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(window);
        return new(window - 1, 0);
    }

    /// <summary>Keys allowed before the query.</summary>
    public int Left => _left;

    /// <summary>Keys allowed after the query.</summary>
    public int Right => _right;

    /// <summary>q0 - left (saturated)</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => MaskMath.Saturate((long)q0 - _left);

    /// <summary>q1 + right (saturated)</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => MaskMath.Saturate((long)q1 + _right);

    /// <summary>-left &lt;= k - q &lt;= right</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) => k - q >= -_left && k - q <= _right;

    /// <summary>Exact: Empty when the offset interval misses [-left, right], Full when inside it.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        int dMin = k0 - (q1 - 1), dMax = (k1 - 1) - q0;
        return MaskMath.Kind(dMax >= -_left && dMin <= _right, dMin >= -_left && dMax <= _right);
    }
}

/// <summary>
/// StreamingLLM attention sinks + causal window: k &lt;= q and (k &lt; sinks or q - k &lt; window).
/// The first <c>sinks</c> keys stay visible to every later query; otherwise only the last
/// <c>window</c> keys up to the query. Classify is exact. default(SinkWindowMask) has no
/// window (window 0 with no sinks allows nothing): entry points reject it.
/// </summary>
public readonly struct SinkWindowMask : IMaskPredicate, IValidated
{
    private readonly int _sinks, _window;

    /// <summary><paramref name="sinks"/> &gt;= 0 sink keys and a window of
    /// <paramref name="window"/> &gt;= 1 keys.</summary>
    public SinkWindowMask(int sinks, int window)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sinks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(window);
        (_sinks, _window) = (sinks, window);
    }

    /// <summary>Number of sink keys.</summary>
    public int Sinks => _sinks;

    /// <summary>Window length in keys (the query's own key included).</summary>
    public int Window => _window;

    /// <summary>The window is missing (default) or &lt; 1, or sinks &lt; 0.</summary>
    public string? ParameterError() =>
        _window < 1 ? VariantChecks.Missing(nameof(SinkWindowMask), "window", _window, ">= 1 keys",
            isDefault: _window == 0 && _sinks == 0)
        : _sinks < 0 ? VariantChecks.Missing(nameof(SinkWindowMask), "sinks", _sinks, ">= 0", false)
        : null;

    /// <summary>0</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>q1: keys after the last query are never allowed.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => q1;

    /// <summary>k &lt;= q and (k &lt; sinks or q - k &lt; window)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) => AllowsFor(_sinks, _window, q, k);

    /// <summary>
    /// Exact. Some pair is allowed iff a sink key is at or before the last query, or the
    /// offsets q - k of the tile meet [0, window); all are iff the tile is below the diagonal
    /// and the farthest non-sink key is within the window of the last query.
    /// </summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        ClassifyFor(_sinks, _window, q0, q1, k0, k1);

    /// <summary>The predicate for explicit parameters (no validation: per-head masks call it).</summary>
    internal static bool AllowsFor(int sinks, int window, int q, int k) =>
        k <= q && (k < sinks || q - k < window);

    /// <summary>The exact classification for explicit parameters.</summary>
    internal static TileKind ClassifyFor(int sinks, int window, int q0, int q1, int k0, int k1)
    {
        bool sinkAny = k0 < sinks && k0 <= q1 - 1;
        bool windowAny = (q1 - 1) - k0 >= 0 && q0 - (k1 - 1) <= window - 1;
        bool all = k1 - 1 <= q0 && (k1 <= sinks || (q1 - 1) - MaskMath.Max(k0, sinks) < window);
        return MaskMath.Kind(sinkAny || windowAny, all);
    }
}

/// <summary>
/// Prefix-LM (T5, UniLM, PaliGemma): k &lt; prefix or k &lt;= q. The first <c>prefix</c> keys are
/// seen by every query (bidirectional inside the prefix), the rest causally. Classify is exact.
/// default(PrefixLmMask) has prefix 0: causal attention, a valid mask.
/// </summary>
public readonly struct PrefixLmMask : IMaskPredicate
{
    /// <summary>Row q is [0, max(prefix, q + 1)).</summary>
    public static bool RowIsInterval => true;

    private readonly int _prefix;

    /// <summary>A prefix of <paramref name="prefix"/> &gt;= 0 keys.</summary>
    public PrefixLmMask(int prefix)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(prefix);
        _prefix = prefix;
    }

    /// <summary>Prefix length in keys.</summary>
    public int Prefix => _prefix;

    /// <summary>0</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>max(prefix, q1)</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => MaskMath.Max(_prefix, q1);

    /// <summary>k &lt; prefix or k &lt;= q</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) => k < _prefix || k <= q;

    /// <summary>Exact: Empty iff the first key is past both the prefix and the last query;
    /// Full iff every key is in the prefix or at/before the first query.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        MaskMath.Kind(k0 < _prefix || k0 <= q1 - 1, k1 <= _prefix || k1 - 1 <= q0);
}
