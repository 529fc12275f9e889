using System.Runtime.CompilerServices;

namespace Managed.Kernels.Variants;

/// <summary>
/// One axis of a window mask on a token grid: the window of axis index i is a set of indices
/// in [Lo(i), Hi(i)] spaced by <see cref="Dilation"/>. Lo and Hi are non-decreasing in i within
/// each residue class i mod Dilation, which is what <see cref="GridTiles"/> relies on.
/// </summary>
internal interface IAxisWindow
{
    /// <summary>Number of indices on the axis.</summary>
    int Extent { get; }

    /// <summary>Spacing of the window's indices (1: contiguous).</summary>
    int Dilation { get; }

    /// <summary>Smallest index in the window of i (0 &lt;= i &lt; Extent).</summary>
    int Lo(int i);

    /// <summary>Largest index in the window of i (0 &lt;= i &lt; Extent).</summary>
    int Hi(int i);

    /// <summary>True where j is in the window of i (both in [0, Extent)).</summary>
    bool Allows(int i, int j);
}

/// <summary>
/// One axis of neighborhood attention with NATTEN semantics (Hassani et al.), plus the stride
/// of Generalized Neighborhood Attention (F1, F2). For an axis of length L, kernel size K,
/// dilation d and stride s, index i lies in dilation group r = i mod d at group position
/// g = i div d; the group has L_r = ceil((L - r) / d) members. In group coordinates:
/// <list type="bullet">
/// <item>non-causal: leader c = min((g div s) s + s div 2, L_r - 1) (c = g for s = 1), window
/// start w = clamp(c - K div 2, 0, L_r - K) (0 when K &gt;= L_r), window [w, min(w + K, L_r) - 1].
/// The window is shifted inward at the borders, so every query sees exactly min(K, L_r) keys, as
/// NATTEN's get_window_start does with dilation (its "phase-aligned" per-group length);</item>
/// <item>causal: window [max(0, g - K + 1), g] (NATTEN's causal window: no inward shift, the first
/// queries see fewer keys); the stride is not applied on causal axes.</item>
/// </list>
/// j is allowed for i iff j mod d = r and j div d is in the window. s = 1 is plain neighborhood
/// attention; s = K gives the blocked form (the window of group g is [K g, K g + K - 1], the
/// block itself, away from the clamped last block); d = 1, s = 1 and K &gt;= L (so any
/// K &gt;= 2L - 1) allows every pair.
/// </summary>
public readonly struct NeighborhoodAxis : IAxisWindow
{
    private readonly int _extent, _kernel, _dilation, _stride;
    private readonly int _causal; // 0/1: bool is not blittable, and ILGPU passes masks by value

    /// <summary>An axis of <paramref name="extent"/> indices with kernel size
    /// <paramref name="kernel"/> (NATTEN requires it odd; any &gt;= 1 works here),
    /// <paramref name="dilation"/> &gt;= 1, <paramref name="stride"/> &gt;= 1.</summary>
    public NeighborhoodAxis(int extent, int kernel, int dilation = 1, bool causal = false, int stride = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(extent);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kernel);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dilation);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(stride);
        (_extent, _kernel, _dilation, _causal, _stride) = (extent, kernel, dilation, causal ? 1 : 0, stride);
    }

    /// <summary>L: number of indices on the axis.</summary>
    public int Extent => _extent;

    /// <summary>K: kernel (window) size.</summary>
    public int Kernel => _kernel;

    /// <summary>d: dilation.</summary>
    public int Dilation => _dilation;

    /// <summary>s: GNA stride (queries in a group of s share a window).</summary>
    public int Stride => _stride;

    /// <summary>Causal axis: keys at or before the query only.</summary>
    public bool IsCausal => _causal != 0;

    /// <summary>r + d w: the first index of i's window.</summary>
    public int Lo(int i) => i % _dilation + _dilation * Start(i);

    /// <summary>r + d (last window position in the group): the last index of i's window.</summary>
    public int Hi(int i)
    {
        int r = i % _dilation, g = i / _dilation;
        int end = _causal != 0 ? g : MaskMath.Min(Start(i) + _kernel, GroupLength(r)) - 1;
        return r + _dilation * end;
    }

    /// <summary>j mod d = i mod d and Lo(i) &lt;= j &lt;= Hi(i)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int i, int j) => j % _dilation == i % _dilation && j >= Lo(i) && j <= Hi(i);

    /// <summary>Window start w in group coordinates.</summary>
    private int Start(int i)
    {
        int r = i % _dilation, g = i / _dilation;
        if (_causal != 0) return MaskMath.Max(0, g - _kernel + 1);
        int length = GroupLength(r);
        int leader = MaskMath.Min(g / _stride * _stride + _stride / 2, length - 1);
        return MaskMath.Max(0, MaskMath.Min(leader - _kernel / 2, length - _kernel));
    }

    /// <summary>L_r = ceil((L - r) / d): members of dilation group r.</summary>
    private int GroupLength(int r) => (_extent - r + _dilation - 1) / _dilation;
}

/// <summary>
/// One axis of HaloNets blocked local attention (F3, Vaswani et al. 2021): index i is in block
/// i div b and sees [b (i div b) - h, b (i div b) + b - 1 + h] clipped to [0, L) (the paper pads
/// the border with zeros; here the padding keys simply do not exist, so border blocks see fewer
/// keys). h = 0 is block-diagonal attention.
/// </summary>
public readonly struct HaloAxis : IAxisWindow
{
    private readonly int _extent, _block, _halo;

    /// <summary>An axis of <paramref name="extent"/> indices, blocks of <paramref name="block"/>,
    /// halo <paramref name="halo"/> &gt;= 0.</summary>
    public HaloAxis(int extent, int block, int halo)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(extent);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(block);
        ArgumentOutOfRangeException.ThrowIfNegative(halo);
        (_extent, _block, _halo) = (extent, block, halo);
    }

    /// <summary>L: number of indices on the axis.</summary>
    public int Extent => _extent;

    /// <summary>1: halo windows are contiguous.</summary>
    public int Dilation => 1;

    /// <summary>max(b (i div b) - h, 0)</summary>
    public int Lo(int i) => MaskMath.Max(i / _block * _block - _halo, 0);

    /// <summary>min(b (i div b) + b - 1 + h, L - 1)</summary>
    public int Hi(int i) => MaskMath.Min(i / _block * _block + _block - 1 + _halo, _extent - 1);

    /// <summary>Lo(i) &lt;= j &lt;= Hi(i)</summary>
    public bool Allows(int i, int j) => j >= Lo(i) && j <= Hi(i);
}
