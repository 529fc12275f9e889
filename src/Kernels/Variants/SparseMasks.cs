
namespace Managed.Kernels.Variants;

/// <summary>
/// Radial Attention's energy-decay mask (F5, Li et al. 2025), as implemented here (‡ the
/// paper's band schedule recalled, not checked): video tokens t = f * S + s in F frames of S
/// tokens each. A query (f_q, s_q) sees key (f_k, s_k) iff |s_q - s_k| &lt;= w &gt;&gt; band(Δ)
/// with Δ = |f_q - f_k| and band(Δ) the bit length of Δ (0 for Δ = 0, 1 for 1, 2 for 2..3,
/// 3 for 4..7, ...): the spatial window w halves with each doubling of the temporal distance
/// and ends at the diagonal s_k = s_q (the paper also thins out far frames; not done here).
/// Tokens past F * S are masked. default(RadialMask) has no frames (0 tokens: nothing
/// allowed): entry points reject it.
/// </summary>
public readonly struct RadialMask : IMaskPredicate, IValidated
{
    private readonly int _frames, _frameTokens, _window;

    /// <summary><paramref name="frames"/> frames of <paramref name="frameTokens"/> tokens,
    /// same-frame spatial window <paramref name="window"/> &gt;= 0.</summary>
    public RadialMask(int frames, int frameTokens, int window)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(frames);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(frameTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(window);
        (_frames, _frameTokens, _window) = (frames, frameTokens, window);
    }

    /// <summary>F * S tokens.</summary>
    public int Count => _frames * _frameTokens;

    /// <summary>Frames or frame tokens missing (default) or &lt; 1, or window &lt; 0.</summary>
    public string? ParameterError()
    {
        bool isDefault = _frames == 0 && _frameTokens == 0 && _window == 0;
        if (_frames < 1)
            return VariantChecks.Missing(nameof(RadialMask), "frames", _frames, ">= 1", isDefault);
        if (_frameTokens < 1)
            return VariantChecks.Missing(nameof(RadialMask), "frameTokens", _frameTokens, ">= 1",
                false);
        return _window < 0
            ? VariantChecks.Missing(nameof(RadialMask), "window", _window, ">= 0", false) : null;
    }

    /// <summary>0 (no bound)</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>int.MaxValue (no bound)</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => int.MaxValue;

    /// <summary>q, k in [0, F S) and |s_q - s_k| &lt;= w &gt;&gt; bitlength(|f_q - f_k|)</summary>
    public bool Allows(int batch, int head, int q, int k)
    {
        if ((uint)q >= (uint)Count || (uint)k >= (uint)Count) return false;
        int s = _frameTokens, dt = q / s - k / s, ds = q % s - k % s;
        return Abs(ds) <= _window >> MaskMath.BitLength(Abs(dt));
    }

    /// <summary>
    /// Bounding boxes in (frame, spatial) of the clipped ranges: Empty when the smallest spatial
    /// distance exceeds the radius at the smallest frame distance, Full when the largest
    /// spatial distance is within the radius at the largest frame distance.
    /// </summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        GridTiles.Clip(q0, q1, Count, out int qa, out int qb, out bool qc);
        GridTiles.Clip(k0, k1, Count, out int ka, out int kb, out bool kc);
        if (qa > qb || ka > kb) return TileKind.Empty;
        GridTiles.Box2(qa, qb, _frameTokens, out int qfa, out int qfb, out int qsa, out int qsb);
        GridTiles.Box2(ka, kb, _frameTokens, out int kfa, out int kfb, out int ksa, out int ksb);
        int dtMin = MaskMath.Max(0, MaskMath.Max(kfa - qfb, qfa - kfb));
        int dtMax = MaskMath.Max(kfb - qfa, qfb - kfa);
        int dsMin = MaskMath.Max(0, MaskMath.Max(ksa - qsb, qsa - ksb));
        int dsMax = MaskMath.Max(ksb - qsa, qsb - ksa);
        bool any = dsMin <= _window >> MaskMath.BitLength(dtMin);
        bool all = !qc && !kc && dsMax <= _window >> MaskMath.BitLength(dtMax);
        return MaskMath.Kind(any, all);
    }

    private static int Abs(int x) => x < 0 ? -x : x;
}

/// <summary>
/// PowerAttention (F6, ‡ block granularity recalled from the paper): causal, and with block
/// distance Δ = floor(q / B) - floor(k / B), key k is seen iff k &lt;= q and (Δ &lt; local or Δ
/// is a power of two): a local band of blocks plus blocks at distances 1, 2, 4, 8, ...
/// local &gt;= the number of key blocks gives causal attention. default(PowerAttentionMask) has
/// no block size (blocks of 0 tokens): entry points reject it.
/// </summary>
public readonly struct PowerAttentionMask : IMaskPredicate, IValidated
{
    private readonly int _block, _local;

    /// <summary>Blocks of <paramref name="block"/> tokens, <paramref name="local"/> &gt;= 1 local
    /// blocks (the query's own block included).</summary>
    public PowerAttentionMask(int block, int local)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(block);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(local);
        (_block, _local) = (block, local);
    }

    /// <summary>Block or local band missing (default) or &lt; 1.</summary>
    public string? ParameterError() =>
        _block < 1
            ? VariantChecks.Missing(nameof(PowerAttentionMask), "block", _block, ">= 1 tokens",
            isDefault: _block == 0 && _local == 0)
        : _local < 1
            ? VariantChecks.Missing(nameof(PowerAttentionMask), "local", _local, ">= 1 blocks",
                false)
        : null;

    /// <summary>0</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>q1: keys after the last query are never allowed.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => q1;

    /// <summary>k &lt;= q and (Δ &lt; local or Δ a power of two)</summary>
    public bool Allows(int batch, int head, int q, int k)
    {
        int d = MaskMath.FloorDiv(q, _block) - MaskMath.FloorDiv(k, _block);
        return k <= q && (d < _local || MaskMath.IsPowerOfTwo(d));
    }

    /// <summary>
    /// The causal class, refined by the tile's block distances [Δmin, Δmax]: Empty when none is
    /// allowed, Full (below the diagonal) when all are.
    /// </summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        var causal = default(CausalMask).Classify(batch, head, q0, q1, k0, k1);
        if (causal == TileKind.Empty) return TileKind.Empty;
        int dMin = MaskMath.FloorDiv(q0, _block) - MaskMath.FloorDiv(k1 - 1, _block);
        int dMax = MaskMath.FloorDiv(q1 - 1, _block) - MaskMath.FloorDiv(k0, _block);
        int lo = MaskMath.Max(dMin, 0);
        bool any = dMax >= 0 && (lo < _local || MaskMath.NextPowerOfTwo(lo) <= dMax);
        if (!any) return TileKind.Empty;
        int far = MaskMath.Max(dMin, _local);
        bool all = dMax < _local || (far == dMax && MaskMath.IsPowerOfTwo(far));
        return causal == TileKind.Full && all ? TileKind.Full : TileKind.Partial;
    }
}
