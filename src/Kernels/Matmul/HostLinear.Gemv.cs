using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Managed.Kernels.Layouts;
using Managed.Kernels.Simd;

namespace Managed.Kernels.Matmul;

// GEMV: a stream through the weights. Four rows of W at a time, each element loaded and
// widened in registers once per group of 4 rows of x (16 accumulators), over chunks of k
// small enough that the chunk's weights are still in L1 for the next group.
internal sealed unsafe partial class HostLinear<TElement, TStorage, TOps, TV, TWiden>
{
    /// <summary>Elements of k per chunk: a multiple of every SIMD step (2 x 16).</summary>
    private const int GemvChunk = 1024;

    /// <summary>Most rows of x on the host GEMV: at 16 rows it measured twice as fast as the
    /// GEMM (n 2048, k 8192, bf16), whose packing costs a pass over the weights.</summary>
    public const int GemvRows = 16;

    /// <summary>How far ahead of a step its rows are prefetched.</summary>
    private const int PrefetchBytes = 1024;

    /// <summary>How far ahead (bytes) the weights of short rows are prefetched: rows whose
    /// 4-row block is shorter than this are prefetched whole blocks ahead.</summary>
    private const int ShortRowsAhead = 8192;

    /// <summary>The prefetch distance for rows of <paramref name="k"/> elements: within the
    /// row for long rows, whole 4-row blocks ahead for short ones.</summary>
    private static long PrefetchDistance(int k)
    {
        long block = 4L * k * sizeof(TStorage);
        return block >= ShortRowsAhead ? PrefetchBytes
            : block * ((ShortRowsAhead + block - 1) / block);
    }

    private void GemvPart(int part)
    {
        int j0 = part * _rowsPerPart, j1 = Math.Min(_n, j0 + _rowsPerPart);
        float* sums = stackalloc float[4 * GemvRows];
        int j = j0;
        for (; j + 4 <= j1; j += 4)
        {
            new Span<float>(sums, 4 * _m).Clear();
            for (int c0 = 0; c0 < _k; c0 += GemvChunk)
            {
                int len = Math.Min(GemvChunk, _k - c0);
                TStorage* w = _w + (long)j * _k + c0;
                // Groups of 4 rows of x; the chunk's weights are in L1 after the first.
                for (int i = 0; i < _m; i += 4)
                {
                    float* x = _x + (long)i * _k + c0;
                    switch (Math.Min(4, _m - i))
                    {
                        case 1: Dot4<Rows1>(w, _k, x, len, sums + 4 * i); break;
                        case 2: Dot4<Rows2>(w, _k, x, len, sums + 4 * i); break;
                        case 3: Dot4<Rows3>(w, _k, x, len, sums + 4 * i); break;
                        default: Dot4<Rows4>(w, _k, x, len, sums + 4 * i); break;
                    }
                }
            }
            for (int i = 0; i < _m; i++)
                for (int r = 0; r < 4; r++)
                    _y[(long)i * _n + j + r] = sums[4 * i + r]
                        + (_bias is null ? 0f : _bias[j + r]);
        }
        for (; j < j1; j++)
        {
            new Span<float>(sums, _m).Clear();
            for (int c0 = 0; c0 < _k; c0 += GemvChunk)
            {
                int len = Math.Min(GemvChunk, _k - c0);
                TStorage* w = _w + (long)j * _k + c0;
                for (int i = 0; i < _m; i++)
                    sums[i] += Dot1(w, _x + (long)i * _k + c0, len);
            }
            for (int i = 0; i < _m; i++)
                _y[(long)i * _n + j] = sums[i] + (_bias is null ? 0f : _bias[j]);
        }
    }

    /// <summary>sums[4 i + r] += W row r . x row i over [0, len), for the 4 weight rows at
    /// stride <paramref name="stride"/> and the TRows rows of x at stride k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Dot4<TRows>(TStorage* w, int stride, float* x, int len, float* sums)
        where TRows : struct, IRowCount
    {
        TStorage* w1 = w + stride, w2 = w1 + stride, w3 = w2 + stride;
        float* x1 = x + _k, x2 = x1 + _k, x3 = x2 + _k;
        TV a00 = default, a01 = default, a02 = default, a03 = default;
        TV a10 = default, a11 = default, a12 = default, a13 = default;
        TV a20 = default, a21 = default, a22 = default, a23 = default;
        TV a30 = default, a31 = default, a32 = default, a33 = default;
        int step = 2 * TOps.Count, kk = 0;
        for (; kk <= len - step; kk += step)
        {
            Prefetch(w + kk, stride, _prefetch);
            var (l0, h0) = LoadWeights(w + kk);
            var (l1, h1) = LoadWeights(w1 + kk);
            var (l2, h2) = LoadWeights(w2 + kk);
            var (l3, h3) = LoadWeights(w3 + kk);
            var (xl, xh) = TWiden.Float(x + kk);
            a00 = TOps.Fma(h0, xh, TOps.Fma(l0, xl, a00));
            a01 = TOps.Fma(h1, xh, TOps.Fma(l1, xl, a01));
            a02 = TOps.Fma(h2, xh, TOps.Fma(l2, xl, a02));
            a03 = TOps.Fma(h3, xh, TOps.Fma(l3, xl, a03));
            if (TRows.Count > 1)
            {
                (xl, xh) = TWiden.Float(x1 + kk);
                a10 = TOps.Fma(h0, xh, TOps.Fma(l0, xl, a10));
                a11 = TOps.Fma(h1, xh, TOps.Fma(l1, xl, a11));
                a12 = TOps.Fma(h2, xh, TOps.Fma(l2, xl, a12));
                a13 = TOps.Fma(h3, xh, TOps.Fma(l3, xl, a13));
            }
            if (TRows.Count > 2)
            {
                (xl, xh) = TWiden.Float(x2 + kk);
                a20 = TOps.Fma(h0, xh, TOps.Fma(l0, xl, a20));
                a21 = TOps.Fma(h1, xh, TOps.Fma(l1, xl, a21));
                a22 = TOps.Fma(h2, xh, TOps.Fma(l2, xl, a22));
                a23 = TOps.Fma(h3, xh, TOps.Fma(l3, xl, a23));
            }
            if (TRows.Count > 3)
            {
                (xl, xh) = TWiden.Float(x3 + kk);
                a30 = TOps.Fma(h0, xh, TOps.Fma(l0, xl, a30));
                a31 = TOps.Fma(h1, xh, TOps.Fma(l1, xl, a31));
                a32 = TOps.Fma(h2, xh, TOps.Fma(l2, xl, a32));
                a33 = TOps.Fma(h3, xh, TOps.Fma(l3, xl, a33));
            }
        }
        Finish(a00, a01, a02, a03, w, stride, x, kk, len, sums);
        if (TRows.Count > 1) Finish(a10, a11, a12, a13, w, stride, x1, kk, len, sums + 4);
        if (TRows.Count > 2) Finish(a20, a21, a22, a23, w, stride, x2, kk, len, sums + 8);
        if (TRows.Count > 3) Finish(a30, a31, a32, a33, w, stride, x3, kk, len, sums + 12);
    }

    /// <summary>
    /// Asks for the 4 rows' weights <see cref="PrefetchBytes"/> ahead of this step (one step
    /// reads 64 bytes of a 16-bit row, 128 of a float row). The hardware prefetchers alone
    /// kept too few lines in flight for 16-bit rows: bf16 streamed at about 70% of the read
    /// bandwidth where float rows reached it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(TStorage* w, int stride, long distance)
    {
        if (!Sse.IsSupported) return;
        byte* p = (byte*)w + distance;
        long row = (long)stride * sizeof(TStorage);
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + row);
        Sse.Prefetch0(p + 2 * row);
        Sse.Prefetch0(p + 3 * row);
        if (sizeof(TStorage) == 4 && TOps.Count == 16)
        {
            Sse.Prefetch0(p + 64);
            Sse.Prefetch0(p + row + 64);
            Sse.Prefetch0(p + 2 * row + 64);
            Sse.Prefetch0(p + 3 * row + 64);
        }
    }

    /// <summary>Adds one x row's four accumulators and its scalar tail [kk, len) to sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(TV a0, TV a1, TV a2, TV a3, TStorage* w, int stride, float* x,
        int kk, int len, float* sums)
    {
        float s0 = TOps.SumAcross(a0), s1 = TOps.SumAcross(a1);
        float s2 = TOps.SumAcross(a2), s3 = TOps.SumAcross(a3);
        for (; kk < len; kk++)
        {
            float xv = x[kk];
            s0 += TElement.ToSingle(w[kk]) * xv;
            s1 += TElement.ToSingle(w[stride + kk]) * xv;
            s2 += TElement.ToSingle(w[2 * stride + kk]) * xv;
            s3 += TElement.ToSingle(w[3 * stride + kk]) * xv;
        }
        sums[0] += s0;
        sums[1] += s1;
        sums[2] += s2;
        sums[3] += s3;
    }

    /// <summary>W row . x over [0, len).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot1(TStorage* w, float* x, int len)
    {
        TV a = default, b = default;
        int step = 2 * TOps.Count, kk = 0;
        for (; kk <= len - step; kk += step)
        {
            var (xl, xh) = TWiden.Float(x + kk);
            var (l, h) = LoadWeights(w + kk);
            a = TOps.Fma(l, xl, a);
            b = TOps.Fma(h, xh, b);
        }
        float s = TOps.SumAcross(TOps.Add(a, b));
        for (; kk < len; kk++) s += TElement.ToSingle(w[kk]) * x[kk];
        return s;
    }
}
