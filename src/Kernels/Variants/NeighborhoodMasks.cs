
namespace Managed.Kernels.Variants;

/// <summary>
/// 1-D neighborhood attention (NATTEN na1d, F1; GNA strided/blocked with a stride, F2) over
/// tokens 0..L-1: q, k in [0, L) and <see cref="NeighborhoodAxis.Allows"/>(q, k). Tokens outside
/// the axis (seqK &gt; L, or negative query positions) are masked, so a run is NATTEN's only
/// when seqQ = seqK = L. A default instance has no axis: entry points reject it.
/// </summary>
public readonly struct NeighborhoodMask1D(NeighborhoodAxis axis) : IMaskPredicate, IValidated
{
    private readonly NeighborhoodAxis _axis = axis;

    /// <summary>Neighborhood of <paramref name="kernel"/> over <paramref name="length"/> tokens
    /// (NATTEN's limits: see <see cref="NeighborhoodAxis"/>).</summary>
    public NeighborhoodMask1D(int length, int kernel, int dilation = 1, bool causal = false,
        int stride = 1)
        : this(new NeighborhoodAxis(length, kernel, dilation, causal, stride)) { }

    /// <summary>The axis' parameter error.</summary>
    public string? ParameterError() => GridTiles.AxisError("NeighborhoodMask1D axis", _axis);

    /// <summary>The lowest window start of the tile's queries.</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => GridTiles.KeyStart(_axis, q0, q1, 1);

    /// <summary>One past the highest window end of the tile's queries.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => GridTiles.KeyEnd(_axis, q0, q1, 1);

    /// <summary>0 &lt;= q, k &lt; L and the axis allows (q, k)</summary>
    public bool Allows(int batch, int head, int q, int k) =>
        (uint)q < (uint)_axis.Extent && (uint)k < (uint)_axis.Extent && _axis.Allows(q, k);

    /// <summary>Per-axis classification (exact for dilation 1) of the tile clipped to the axis.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        GridTiles.Clip(q0, q1, _axis.Extent, out int qa, out int qb, out bool qc);
        GridTiles.Clip(k0, k1, _axis.Extent, out int ka, out int kb, out bool kc);
        if (qa > qb || ka > kb) return TileKind.Empty;
        var kind = GridTiles.Axis(_axis, qa, qb, ka, kb);
        return kind == TileKind.Full && (qc || kc) ? TileKind.Partial : kind;
    }
}

/// <summary>
/// 2-D neighborhood attention (NATTEN na2d, F1/F2) on a rows x columns grid, tokens row-major
/// (t = y * columns + x): q, k in [0, rows * columns) and both axes allow their coordinates,
/// rows.Allows(qy, ky) and columns.Allows(qx, kx). Tokens past the grid are masked. An axis
/// without parameters (a default one) is rejected by entry points.
/// </summary>
public readonly struct NeighborhoodMask2D(NeighborhoodAxis rows, NeighborhoodAxis columns)
    : IMaskPredicate, IValidated
{
    private readonly NeighborhoodAxis _rows = rows, _columns = columns;

    /// <summary>The first axis' parameter error.</summary>
    public string? ParameterError() => GridTiles.AxisError("NeighborhoodMask2D rows", _rows)
        ?? GridTiles.AxisError("NeighborhoodMask2D columns", _columns);

    /// <summary>rows * columns tokens.</summary>
    public int Count => _rows.Extent * _columns.Extent;

    /// <summary>The first key of the lowest window row of the tile's query rows.</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => GridTiles.KeyStart2D(_rows, _columns, q0, q1);

    /// <summary>The end of the highest window row of the tile's query rows.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => GridTiles.KeyEnd2D(_rows, _columns, q0, q1);

    /// <summary>q, k on the grid, rows.Allows(qy, ky) and columns.Allows(qx, kx)</summary>
    public bool Allows(int batch, int head, int q, int k) =>
        GridTiles.Allows2D(_rows, _columns, q, k);

    /// <summary>Per-axis classification of the tiles' bounding boxes (see GridTiles).</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        GridTiles.Classify2D(_rows, _columns, q0, q1, k0, k1);
}

/// <summary>
/// 3-D neighborhood attention (NATTEN na3d, F1/F2) on a depth x rows x columns grid, tokens
/// row-major (t = (z * rows + y) * columns + x): q, k on the grid and all three axes allow
/// their coordinates. Tokens past the grid are masked. An axis without parameters (a default
/// one) is rejected by entry points.
/// </summary>
public readonly struct NeighborhoodMask3D(NeighborhoodAxis depth, NeighborhoodAxis rows,
    NeighborhoodAxis columns) : IMaskPredicate, IValidated
{
    private readonly NeighborhoodAxis _depth = depth, _rows = rows, _columns = columns;

    /// <summary>The first axis' parameter error.</summary>
    public string? ParameterError() => GridTiles.AxisError("NeighborhoodMask3D depth", _depth)
        ?? GridTiles.AxisError("NeighborhoodMask3D rows", _rows)
        ?? GridTiles.AxisError("NeighborhoodMask3D columns", _columns);

    /// <summary>depth * rows * columns tokens.</summary>
    public int Count => _depth.Extent * _rows.Extent * _columns.Extent;

    /// <summary>The first key of the lowest window plane of the tile's query planes.</summary>
    public int KeyStart(int batch, int head, int q0, int q1)
    {
        int plane = _rows.Extent * _columns.Extent;
        return GridTiles.KeyStart(_depth, MaskMath.FloorDiv(q0, plane), MaskMath.FloorDiv(q1 - 1, plane) + 1, plane);
    }

    /// <summary>The end of the highest window plane of the tile's query planes.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1)
    {
        int plane = _rows.Extent * _columns.Extent;
        return GridTiles.KeyEnd(_depth, MaskMath.FloorDiv(q0, plane), MaskMath.FloorDiv(q1 - 1, plane) + 1, plane);
    }

    /// <summary>q, k on the grid and depth, rows, columns all allow their coordinates</summary>
    public bool Allows(int batch, int head, int q, int k)
    {
        int w = _columns.Extent, plane = _rows.Extent * w;
        return (uint)q < (uint)Count && (uint)k < (uint)Count
            && _depth.Allows(q / plane, k / plane)
            && _rows.Allows(q % plane / w, k % plane / w)
            && _columns.Allows(q % w, k % w);
    }

    /// <summary>Per-axis classification of the tiles' bounding boxes (see GridTiles).</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        GridTiles.Clip(q0, q1, Count, out int qa, out int qb, out bool qc);
        GridTiles.Clip(k0, k1, Count, out int ka, out int kb, out bool kc);
        if (qa > qb || ka > kb) return TileKind.Empty;
        int plane = _rows.Extent * _columns.Extent;
        var kind = GridTiles.Axis(_depth, qa / plane, qb / plane, ka / plane, kb / plane);
        if (kind == TileKind.Empty) return TileKind.Empty;
        kind = GridTiles.Meet(kind, Plane(qa, qb, ka, kb));
        return kind == TileKind.Full && (qc || kc) ? TileKind.Partial : kind;
    }

    /// <summary>Rows and columns of the boxes; a range over two planes spans whole planes.</summary>
    private TileKind Plane(int qa, int qb, int ka, int kb)
    {
        int w = _columns.Extent, plane = _rows.Extent * w;
        bool qOne = qa / plane == qb / plane, kOne = ka / plane == kb / plane;
        int qpa = qOne ? qa % plane : 0, qpb = qOne ? qb % plane : plane - 1;
        int kpa = kOne ? ka % plane : 0, kpb = kOne ? kb % plane : plane - 1;
        GridTiles.Box2(qpa, qpb, w, out int qya, out int qyb, out int qxa, out int qxb);
        GridTiles.Box2(kpa, kpb, w, out int kya, out int kyb, out int kxa, out int kxb);
        return GridTiles.Meet(GridTiles.Axis(_rows, qya, qyb, kya, kyb),
            GridTiles.Axis(_columns, qxa, qxb, kxa, kxb));
    }
}

/// <summary>
/// HaloNets blocked local self-attention (F3) on a height x width image, tokens row-major:
/// queries in block (y div b, x div b) see the keys of that block grown by a halo of h on each
/// side, clipped to the image: (b + 2h)^2 keys away from the border. Tokens past the image are
/// masked. A default instance has no blocks: entry points reject it.
/// </summary>
public readonly struct HaloMask(HaloAxis rows, HaloAxis columns) : IMaskPredicate, IValidated
{
    private readonly HaloAxis _rows = rows, _columns = columns;

    /// <summary>The first axis' parameter error.</summary>
    public string? ParameterError() => GridTiles.AxisError("HaloMask rows", _rows)
        ?? GridTiles.AxisError("HaloMask columns", _columns);

    /// <summary>Blocks of <paramref name="block"/> x <paramref name="block"/> with halo
    /// <paramref name="halo"/> on a <paramref name="height"/> x <paramref name="width"/> image.</summary>
    public HaloMask(int height, int width, int block, int halo)
        : this(new HaloAxis(height, block, halo), new HaloAxis(width, block, halo)) { }

    /// <summary>height * width tokens.</summary>
    public int Count => _rows.Extent * _columns.Extent;

    /// <summary>The first key of the lowest window row of the tile's query rows.</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => GridTiles.KeyStart2D(_rows, _columns, q0, q1);

    /// <summary>The end of the highest window row of the tile's query rows.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => GridTiles.KeyEnd2D(_rows, _columns, q0, q1);

    /// <summary>q, k on the image and both axes allow their coordinates</summary>
    public bool Allows(int batch, int head, int q, int k) =>
        GridTiles.Allows2D(_rows, _columns, q, k);

    /// <summary>Per-axis classification of the tiles' bounding boxes (see GridTiles).</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        GridTiles.Classify2D(_rows, _columns, q0, q1, k0, k1);
}
