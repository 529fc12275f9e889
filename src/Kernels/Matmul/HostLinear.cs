using System.Runtime.CompilerServices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Simd;
using Half = System.Half;

namespace Managed.Kernels.Matmul;

/// <summary>
/// One host call of <see cref="Linear"/> on pinned memory: x (m, k), W (n, k), bias (n) or
/// null, y (m, n). A part is a range of output features (rows of W), so each weight is read
/// by one thread: GEMV parts are runs of 4-row blocks; GEMM parts are groups of packed
/// panels times blocks of rows of x.
/// </summary>
internal sealed unsafe partial class HostLinear<TElement, TStorage, TOps, TV, TWiden>
    : IHostLinear
    where TElement : struct, IElement<TStorage>
    where TStorage : unmanaged
    where TOps : struct, ISimd<TV>
    where TV : unmanaged
    where TWiden : struct, IWidening<TV>
{
    private readonly float* _x, _bias, _y;
    private readonly TStorage* _w;
    private readonly int _m, _n, _k, _rowsPerPart, _rowBlocks;
    private readonly bool _gemv;
    private readonly long _prefetch;

    /// <summary>Fewest multiply-adds of a GEMV part beyond one part per thread.</summary>
    private const long PartWork = 1 << 16;

    public HostLinear(LinearPlan plan, float* x, TStorage* w, float* bias, float* y)
    {
        _x = x;
        _w = w;
        _bias = bias;
        _y = y;
        (_m, _n, _k, _gemv) = (plan.M, plan.N, plan.K, plan.M <= GemvRows);
        if (_gemv)
        {
            _prefetch = PrefetchDistance(_k);
            // Up to 4 parts per thread, so a thread slowed by a neighbour's work is made up
            // for by the others, but at least PartWork multiply-adds each: every part costs
            // its claim and its finish on the shared counters. Whole 4-row blocks each.
            int blocks = (_n + 3) / 4;
            long work = (long)plan.M * _n * _k;
            int perThread = (int)Math.Clamp(work / ((long)plan.Threads * PartWork), 1, 4);
            int parts = Math.Clamp(perThread * plan.Threads, 1, blocks);
            _rowsPerPart = (blocks + parts - 1) / parts * 4;
            Parts = (_n + _rowsPerPart - 1) / _rowsPerPart;
        }
        else
        {
            int panels = (_n + PanelWidth - 1) / PanelWidth;
            _rowBlocks = (_m + BlockRows - 1) / BlockRows;
            Parts = (panels + GroupPanels - 1) / GroupPanels * _rowBlocks;
        }
    }

    public int Parts { get; }

    public void Run(int part)
    {
        if (_gemv) GemvPart(part);
        else GemmPart(part);
    }

    /// <summary>2 x Count stored weights from <paramref name="p"/> on, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (TV Lo, TV Hi) LoadWeights(TStorage* p)
    {
        if (typeof(TStorage) == typeof(float)) return TWiden.Float((float*)p);
        if (typeof(TStorage) == typeof(BFloat16)) return TWiden.BFloat16((ushort*)p);
        return TWiden.Half((ushort*)p);
    }

    /// <summary>Stored weights [0, count) widened to float at <paramref name="to"/>.</summary>
    private static void WidenRow(TStorage* from, float* to, int count)
    {
        var dst = new Span<float>(to, count);
        if (typeof(TStorage) == typeof(float))
            new ReadOnlySpan<float>(from, count).CopyTo(dst);
        else if (typeof(TStorage) == typeof(Half))
            ElementConvert.ToSingle(new ReadOnlySpan<Half>(from, count), dst);
        else
            ElementConvert.ToSingle(new ReadOnlySpan<BFloat16>(from, count), dst);
    }
}
