
namespace Managed.Kernels.Variants;

/// <summary>
/// Tile classification for masks on a row-major token grid, built from per-axis windows.
/// A contiguous token range lies inside its bounding box (per axis an index interval; once an
/// outer axis spans two values the inner axes span their whole extent). A pair is allowed iff
/// every axis allows its projection, so: Empty if some axis allows no pair of the two boxes,
/// Full if every axis allows every pair of the boxes (Full on a superset holds on the subset).
/// </summary>
internal static class GridTiles
{
    /// <summary>"{where}: {error}" for an axis with a parameter error, else null.</summary>
    public static string? AxisError<T>(string where, T axis) where T : struct, IValidated =>
        axis.ParameterError() is { } error ? $"{where}: {error}" : null;

    /// <summary>
    /// Class of [ia, ib] x [ja, jb] (inclusive, inside the axis) on one axis. Empty when
    /// [ja, jb] misses the hull of the windows: min Lo and max Hi over the range are reached at
    /// its first and last Dilation indices, since Lo and Hi grow within each residue class.
    /// Full, for dilation 1, when the window of every index covers [ja, jb]:
    /// Lo(ib) &lt;= ja and Hi(ia) &gt;= jb.
    /// </summary>
    public static TileKind Axis<T>(T axis, int ia, int ib, int ja, int jb)
        where T : unmanaged, IAxisWindow
    {
        int d = axis.Dilation, m = MaskMath.Min(d, ib - ia + 1);
        int minLo = int.MaxValue, maxHi = int.MinValue;
        for (int t = 0; t < m; t++)
        {
            minLo = MaskMath.Min(minLo, axis.Lo(ia + t));
            maxHi = MaskMath.Max(maxHi, axis.Hi(ib - t));
        }
        if (jb < minLo || ja > maxHi) return TileKind.Empty;
        if (d == 1) return axis.Lo(ib) <= ja && axis.Hi(ia) >= jb ? TileKind.Full : TileKind.Partial;
        if (ia == ib && ja == jb) return axis.Allows(ia, ja) ? TileKind.Full : TileKind.Empty;
        return TileKind.Partial;
    }

    /// <summary>Meet of two axis classes: Empty wins, Full needs both Full.</summary>
    public static TileKind Meet(TileKind a, TileKind b) =>
        a == TileKind.Empty || b == TileKind.Empty ? TileKind.Empty
        : a == TileKind.Full && b == TileKind.Full ? TileKind.Full : TileKind.Partial;

    /// <summary>
    /// Clips [t0, t1) to [0, count): inclusive bounds, or first &gt; last when nothing is left.
    /// <paramref name="clipped"/> is true when part of the range fell outside.
    /// </summary>
    public static void Clip(int t0, int t1, int count, out int first, out int last, out bool clipped)
    {
        first = MaskMath.Max(t0, 0);
        last = MaskMath.Min(t1, count) - 1;
        clipped = t0 < 0 || t1 > count;
    }

    /// <summary>Bounding box, on a (rows, width) grid, of the inclusive token range [a, b].</summary>
    public static void Box2(int a, int b, int width, out int ya, out int yb, out int xa, out int xb)
    {
        ya = a / width;
        yb = b / width;
        bool oneRow = ya == yb;
        xa = oneRow ? a % width : 0;
        xb = oneRow ? b % width : width - 1;
    }

    /// <summary>Row-major 2-D grid: q, k on it and both axes allow their coordinates.</summary>
    public static bool Allows2D<T>(T rows, T columns, int q, int k) where T : unmanaged, IAxisWindow
    {
        int w = columns.Extent, count = rows.Extent * w;
        return (uint)q < (uint)count && (uint)k < (uint)count
            && rows.Allows(q / w, k / w) && columns.Allows(q % w, k % w);
    }

    /// <summary>Row-major 2-D grid: per-axis classification of the tiles' bounding boxes;
    /// a Full answer becomes Partial when a tile runs past the grid.</summary>
    public static TileKind Classify2D<T>(T rows, T columns, int q0, int q1, int k0, int k1)
        where T : unmanaged, IAxisWindow
    {
        int w = columns.Extent, count = rows.Extent * w;
        Clip(q0, q1, count, out int qa, out int qb, out bool qc);
        Clip(k0, k1, count, out int ka, out int kb, out bool kc);
        if (qa > qb || ka > kb) return TileKind.Empty;
        Box2(qa, qb, w, out int qya, out int qyb, out int qxa, out int qxb);
        Box2(ka, kb, w, out int kya, out int kyb, out int kxa, out int kxb);
        var kind = Meet(Axis(rows, qya, qyb, kya, kyb), Axis(columns, qxa, qxb, kxa, kxb));
        return kind == TileKind.Full && (qc || kc) ? TileKind.Partial : kind;
    }

    /// <summary>
    /// min over axis indices i in [a, b) (clipped to the axis) of Lo(i), times
    /// <paramref name="unit"/> (the keys per axis index): the first key any of them may attend.
    /// A loop: windows of dilated axes are not monotone in i, and it runs once per query tile.
    /// </summary>
    public static int KeyStart<T>(T axis, int a, int b, int unit) where T : unmanaged, IAxisWindow
    {
        int lo = int.MaxValue;
        for (int i = MaskMath.Max(a, 0); i < MaskMath.Min(b, axis.Extent); i++) lo = MaskMath.Min(lo, axis.Lo(i));
        return lo == int.MaxValue ? 0 : MaskMath.Saturate((long)lo * unit);
    }

    /// <summary>(max over axis indices i in [a, b) of Hi(i) + 1) times <paramref name="unit"/>;
    /// 0 when no index of [a, b) is on the axis.</summary>
    public static int KeyEnd<T>(T axis, int a, int b, int unit) where T : unmanaged, IAxisWindow
    {
        int hi = -1;
        for (int i = MaskMath.Max(a, 0); i < MaskMath.Min(b, axis.Extent); i++) hi = MaskMath.Max(hi, axis.Hi(i));
        return MaskMath.Saturate(((long)hi + 1) * unit);
    }

    /// <summary>2-D grid (row-major): the first key of the lowest window row of the query rows
    /// that positions [q0, q1) cover.</summary>
    public static int KeyStart2D<T>(T rows, T columns, int q0, int q1) where T : unmanaged, IAxisWindow =>
        KeyStart(rows, MaskMath.FloorDiv(q0, columns.Extent), MaskMath.FloorDiv(q1 - 1, columns.Extent) + 1, columns.Extent);

    /// <summary>2-D grid: the end of the highest window row of those query rows.</summary>
    public static int KeyEnd2D<T>(T rows, T columns, int q0, int q1) where T : unmanaged, IAxisWindow =>
        KeyEnd(rows, MaskMath.FloorDiv(q0, columns.Extent), MaskMath.FloorDiv(q1 - 1, columns.Extent) + 1, columns.Extent);
}
