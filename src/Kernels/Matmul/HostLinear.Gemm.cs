using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;
using Managed.Kernels.Layouts;
using Managed.Kernels.Simd;

namespace Managed.Kernels.Matmul;

/// <summary>A compile-time row count of the host GEMM micro-kernel.</summary>
internal interface IRowCount
{
    static abstract int Count { get; }
}

internal readonly struct Rows1 : IRowCount { public static int Count => 1; }
internal readonly struct Rows2 : IRowCount { public static int Count => 2; }
internal readonly struct Rows3 : IRowCount { public static int Count => 3; }
internal readonly struct Rows4 : IRowCount { public static int Count => 4; }
internal readonly struct Rows5 : IRowCount { public static int Count => 5; }
internal readonly struct Rows6 : IRowCount { public static int Count => 6; }

// GEMM: per part, a group of panels of PanelWidth output features and a block of rows of x
// (each part packs its panels; parts of other row blocks pack them again). For each block of KC
// inputs the panels' weights are widened once and packed transposed, (kc, PanelWidth) per
// panel, into the thread's scratch (128 KB at 512 bits: L2); then a 6 x PanelWidth
// micro-kernel (12 vector accumulators) runs over every block of 6 rows of x, broadcasting
// x and loading packed weights, and adds its tile into y.
internal sealed unsafe partial class HostLinear<TElement, TStorage, TOps, TV, TWiden>
{
    private const int MicroRows = 6, KC = 256, GroupPanels = 4;

    /// <summary>Rows of x per part: x's block (120 KB), the panels (128 KB) and y's block
    /// (60 KB) stay in L2 over the k blocks; all m rows at once measured half the GFLOP/s at
    /// m = 512. A multiple of MicroRows.</summary>
    private const int BlockRows = 120;

    /// <summary>Output features per panel: two vectors.</summary>
    private static int PanelWidth => 2 * TOps.Count;

    private void GemmPart(int part)
    {
        int nr = PanelWidth, panels = (_n + nr - 1) / nr;
        int group = part / _rowBlocks, rows0 = part % _rowBlocks * BlockRows;
        int rows1 = Math.Min(_m, rows0 + BlockRows);
        int p0 = group * GroupPanels, p1 = Math.Min(panels, p0 + GroupPanels);
        // (GroupPanels, KC, nr) packed panels, (nr + 1, KC) widened rows and a zero row,
        // one row of a partial tile.
        float* scratch = CpuScratch.Get((GroupPanels + 1) * nr * KC + KC + nr + 16);
        float* packed = (float*)(((nint)scratch + 63) & ~(nint)63);
        float* row = packed + GroupPanels * nr * KC;
        float* edge = row + (nr + 1) * KC;
        new Span<float>(row + nr * KC, KC).Clear();
        for (int kb = 0; kb < _k; kb += KC)
        {
            int kc = Math.Min(KC, _k - kb);
            for (int p = p0; p < p1; p++)
                Pack(packed + (p - p0) * nr * KC, p * nr, kb, kc, row);
            for (int i0 = rows0; i0 < rows1; i0 += MicroRows)
            {
                int mr = Math.Min(MicroRows, rows1 - i0);
                for (int p = p0; p < p1; p++)
                {
                    float* panel = packed + (p - p0) * nr * KC;
                    var tile = new Tile(_x + (long)i0 * _k + kb, _k, panel, kc,
                        _y + (long)i0 * _n + p * nr, _n, Math.Min(nr, _n - p * nr),
                        _bias is null ? null : _bias + p * nr, kb == 0, edge);
                    switch (mr)
                    {
                        case 6: Micro<Rows6>(tile); break;
                        case 5: Micro<Rows5>(tile); break;
                        case 4: Micro<Rows4>(tile); break;
                        case 3: Micro<Rows3>(tile); break;
                        case 2: Micro<Rows2>(tile); break;
                        default: Micro<Rows1>(tile); break;
                    }
                }
            }
        }
    }

    /// <summary>W[j0 + c, kb + kk] widened into panel[kk * PanelWidth + c]; zeros for
    /// features past n, so the micro-kernel needs no column tail. The rows are widened with
    /// SIMD into <paramref name="rows"/> (PanelWidth x KC; float rows are read in place),
    /// then interleaved with sequential stores: a scatter down the panel's columns cost
    /// about 5 cycles an element.</summary>
    private void Pack(float* panel, int j0, int kb, int kc, float* rows)
    {
        int nr = PanelWidth;
        float** from = stackalloc float*[nr];
        float* zeros = rows + nr * KC;
        for (int c = 0; c < nr; c++)
        {
            int j = j0 + c;
            if (j >= _n) from[c] = zeros;
            else if (typeof(TStorage) == typeof(float))
                from[c] = (float*)(_w + (long)j * _k + kb);
            else
            {
                from[c] = rows + c * KC;
                WidenRow(_w + (long)j * _k + kb, from[c], kc);
            }
        }
        for (int kk = 0; kk < kc; kk++, panel += nr)
            for (int c = 0; c < nr; c++) panel[c] = from[c][kk];
    }

    /// <summary>One micro-tile: x rows from X (stride Ldx), the packed panel, kc inputs, y
    /// from Y (stride Ldy) with Cols valid columns; First: y = tile + bias (or tile), else
    /// y += tile. Edge holds a partial tile's rows.</summary>
    private readonly struct Tile(float* x, int ldx, float* panel, int kc, float* y, int ldy,
        int cols, float* bias, bool first, float* edge)
    {
        public readonly float* X = x, Panel = panel, Y = y, Bias = bias, Edge = edge;
        public readonly int Ldx = ldx, Kc = kc, Ldy = ldy, Cols = cols;
        public readonly bool First = first;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro<TRows>(in Tile t) where TRows : struct, IRowCount
    {
        int nr = PanelWidth, w = TOps.Count;
        float* x = t.X, b = t.Panel;
        int ldx = t.Ldx;
        TV c0 = default, d0 = default, c1 = default, d1 = default, c2 = default, d2 = default;
        TV c3 = default, d3 = default, c4 = default, d4 = default, c5 = default, d5 = default;
        for (int kk = 0; kk < t.Kc; kk++, b += nr)
        {
            TV lo = TOps.Load(b), hi = TOps.Load(b + w);
            TV a = TOps.Broadcast(x[kk]);
            c0 = TOps.Fma(a, lo, c0);
            d0 = TOps.Fma(a, hi, d0);
            if (TRows.Count > 1)
            {
                a = TOps.Broadcast(x[ldx + kk]);
                c1 = TOps.Fma(a, lo, c1);
                d1 = TOps.Fma(a, hi, d1);
            }
            if (TRows.Count > 2)
            {
                a = TOps.Broadcast(x[2 * ldx + kk]);
                c2 = TOps.Fma(a, lo, c2);
                d2 = TOps.Fma(a, hi, d2);
            }
            if (TRows.Count > 3)
            {
                a = TOps.Broadcast(x[3 * ldx + kk]);
                c3 = TOps.Fma(a, lo, c3);
                d3 = TOps.Fma(a, hi, d3);
            }
            if (TRows.Count > 4)
            {
                a = TOps.Broadcast(x[4 * ldx + kk]);
                c4 = TOps.Fma(a, lo, c4);
                d4 = TOps.Fma(a, hi, d4);
            }
            if (TRows.Count > 5)
            {
                a = TOps.Broadcast(x[5 * ldx + kk]);
                c5 = TOps.Fma(a, lo, c5);
                d5 = TOps.Fma(a, hi, d5);
            }
        }
        Emit(c0, d0, t, 0);
        if (TRows.Count > 1) Emit(c1, d1, t, 1);
        if (TRows.Count > 2) Emit(c2, d2, t, 2);
        if (TRows.Count > 3) Emit(c3, d3, t, 3);
        if (TRows.Count > 4) Emit(c4, d4, t, 4);
        if (TRows.Count > 5) Emit(c5, d5, t, 5);
    }

    /// <summary>Row r of a tile into y: full panels with vectors, the last one through Edge.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Emit(TV lo, TV hi, in Tile t, int r)
    {
        int w = TOps.Count;
        float* y = t.Y + (long)r * t.Ldy;
        if (t.Cols == PanelWidth)
        {
            if (!t.First)
            {
                lo = TOps.Add(lo, TOps.Load(y));
                hi = TOps.Add(hi, TOps.Load(y + w));
            }
            else if (t.Bias is not null)
            {
                lo = TOps.Add(lo, TOps.Load(t.Bias));
                hi = TOps.Add(hi, TOps.Load(t.Bias + w));
            }
            TOps.Store(lo, y);
            TOps.Store(hi, y + w);
            return;
        }
        TOps.Store(lo, t.Edge);
        TOps.Store(hi, t.Edge + w);
        for (int c = 0; c < t.Cols; c++)
            y[c] = t.Edge[c] + (!t.First ? y[c] : t.Bias is null ? 0f : t.Bias[c]);
    }
}
