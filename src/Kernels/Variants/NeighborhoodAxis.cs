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
/// of Generalized Neighborhood Attention (F1, F2), as NATTEN's reference backend and its Flex
/// mask define them. For an axis of length L, kernel size K, dilation d and stride s, index i
/// lies in dilation group r = i mod d at group position g = i div d; the group has
/// L_r = ceil((L - r) / d) members. Queries are grouped by s within their dilation group, and
/// each stride group shares the window of its leader. In group coordinates:
/// <list type="bullet">
/// <item>non-causal: the leader is the group's centre-most query (the right one of the two for
/// even s), c = min((g div s) s + s div 2, L_r - 1) (c = g for s = 1); window start
/// w = clamp(c - K div 2, 0, L_r - K), window [w, w + K - 1]: K div 2 keys before the centre and
/// K - 1 - K div 2 after it (one fewer after for even K). The window is shifted inward at the
/// borders, so every query sees exactly K keys;</item>
/// <item>causal: the leader is the group's last query, c = min((g div s) s + s - 1, L_r - 1);
/// window [max(0, c - K + 1), g]: it still ends at the query, so the first queries and the
/// early members of a stride group see fewer keys.</item>
/// </list>
/// j is allowed for i iff j mod d = r and j div d is in the window. Parameters are NATTEN's:
/// K &gt;= 2 (odd or even), d &gt;= 1, 1 &lt;= s &lt;= K and K d &lt;= L (so K &lt;= L_r for every
/// group); anything else is rejected, as NATTEN rejects it. s = 1 is plain neighborhood
/// attention; s = K gives the blocked form (the window of group g is [K g, K g + K - 1], the
/// block itself, away from the clamped last block); non-causal with d = 1 and K = L allows
/// every pair. A default instance has no parameters (extent 0): masks over it are rejected.
/// </summary>
public readonly struct NeighborhoodAxis : IAxisWindow, IValidated
{
    private readonly int _extent, _kernel, _dilation, _stride;
    private readonly int _causal; // 0/1: bool is not blittable, and ILGPU passes masks by value

    /// <summary>An axis of <paramref name="extent"/> indices with kernel size
    /// <paramref name="kernel"/> &gt;= 2 (odd or even, as NATTEN), <paramref name="dilation"/>
    /// &gt;= 1 and <paramref name="stride"/> in [1, kernel], with kernel x dilation &lt;=
    /// extent.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A parameter NATTEN rejects (named, with
    /// the values involved).</exception>
    public NeighborhoodAxis(int extent, int kernel, int dilation = 1, bool causal = false,
        int stride = 1)
    {
        if (Check(extent, kernel, dilation, stride) is ({ } parameter, { } message))
            throw new ArgumentOutOfRangeException(parameter, message);
        (_extent, _kernel, _dilation, _causal, _stride) =
            (extent, kernel, dilation, causal ? 1 : 0, stride);
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

    /// <summary>NATTEN's limits on the parameters: the first broken one, or null.</summary>
    public string? ParameterError() => Check(_extent, _kernel, _dilation, _stride).Message is { } m
        ? $"{nameof(NeighborhoodAxis)}: {m}"
            + (_extent == 0 && _kernel == 0
                ? " A default(NeighborhoodAxis) has no parameters: build it with its constructor."
                : "")
        : null;

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

    /// <summary>Window start w in group coordinates, from the stride group's leader.</summary>
    private int Start(int i)
    {
        int r = i % _dilation, g = i / _dilation, length = GroupLength(r);
        int first = g / _stride * _stride;
        if (_causal != 0)
            return MaskMath.Max(0, MaskMath.Min(first + _stride - 1, length - 1) - _kernel + 1);
        int leader = MaskMath.Min(first + _stride / 2, length - 1);
        return MaskMath.Max(0, MaskMath.Min(leader - _kernel / 2, length - _kernel));
    }

    /// <summary>L_r = ceil((L - r) / d): members of dilation group r.</summary>
    private int GroupLength(int r) => (_extent - r + _dilation - 1) / _dilation;

    /// <summary>The first parameter NATTEN rejects and why (values named), or (null,
    /// null).</summary>
    private static (string? Parameter, string? Message) Check(int extent, int kernel, int dilation,
        int stride)
    {
        if (extent < 1) return (nameof(extent), $"extent {extent}; expected >= 1.");
        if (kernel < 2) return (nameof(kernel), $"kernel {kernel}; NATTEN expects a kernel >= 2.");
        if (dilation < 1) return (nameof(dilation), $"dilation {dilation}; expected >= 1.");
        if (stride < 1) return (nameof(stride), $"stride {stride}; expected >= 1.");
        if (stride > kernel)
            return (nameof(stride),
                $"stride {stride} > kernel {kernel}; NATTEN expects stride <= kernel size.");
        if ((long)kernel * dilation > extent)
            return (nameof(kernel), $"kernel {kernel} x dilation {dilation} > extent {extent}; "
                + "NATTEN expects kernel x dilation <= the axis length.");
        return (null, null);
    }
}

/// <summary>
/// One axis of HaloNets blocked local attention (F3, Vaswani et al. 2021): index i is in block
/// i div b and sees [b (i div b) - h, b (i div b) + b - 1 + h] clipped to [0, L) (the paper pads
/// the border with zeros; here the padding keys simply do not exist, so border blocks see fewer
/// keys). h = 0 is block-diagonal attention. A default instance has no blocks (block 0):
/// masks over it are rejected.
/// </summary>
public readonly struct HaloAxis : IAxisWindow, IValidated
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

    /// <summary>Extent or block missing (default) or &lt; 1, or halo &lt; 0.</summary>
    public string? ParameterError() =>
        _block < 1 ? VariantChecks.Missing(nameof(HaloAxis), "block", _block, ">= 1",
            isDefault: _block == 0 && _extent == 0)
        : _extent < 1 ? VariantChecks.Missing(nameof(HaloAxis), "extent", _extent, ">= 1", false)
        : _halo < 0 ? VariantChecks.Missing(nameof(HaloAxis), "halo", _halo, ">= 0", false)
        : null;

    /// <summary>1: halo windows are contiguous.</summary>
    public int Dilation => 1;

    /// <summary>max(b (i div b) - h, 0)</summary>
    public int Lo(int i) => MaskMath.Max(i / _block * _block - _halo, 0);

    /// <summary>min(b (i div b) + b - 1 + h, L - 1)</summary>
    public int Hi(int i) => MaskMath.Min(i / _block * _block + _block - 1 + _halo, _extent - 1);

    /// <summary>Lo(i) &lt;= j &lt;= Hi(i)</summary>
    public bool Allows(int i, int j) => j >= Lo(i) && j <= Hi(i);
}
