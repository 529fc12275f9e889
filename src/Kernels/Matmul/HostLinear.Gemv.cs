using System.Runtime.CompilerServices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Simd;

namespace Managed.Kernels.Matmul;

// GEMV: a stream through the weights. Four rows of W at a time, widened in registers, dotted
// with each row of x over a chunk of k; the chunk's weights (8-16 KB) are still in L1 when
// the second to fourth rows of x use them, so W is read from memory once whatever m is.
internal sealed unsafe partial class HostLinear<TElement, TStorage, TOps, TV, TWiden>
{
    /// <summary>Elements of k per chunk: a multiple of every SIMD step (2 x 16).</summary>
    private const int GemvChunk = 1024;

    private void GemvPart(int part)
    {
        int j0 = part * _rowsPerPart, j1 = Math.Min(_n, j0 + _rowsPerPart);
        float* sums = stackalloc float[4 * Linear.GemvMaxRows];
        int j = j0;
        for (; j + 4 <= j1; j += 4)
        {
            new Span<float>(sums, 4 * _m).Clear();
            for (int c0 = 0; c0 < _k; c0 += GemvChunk)
            {
                int len = Math.Min(GemvChunk, _k - c0);
                TStorage* w = _w + (long)j * _k + c0;
                for (int i = 0; i < _m; i++)
                    Dot4(w, _k, _x + (long)i * _k + c0, len, sums + 4 * i);
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

    /// <summary>sums[r] += W row r . x over [0, len) for the 4 rows at stride
    /// <paramref name="stride"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4(TStorage* w, int stride, float* x, int len, float* sums)
    {
        TStorage* w1 = w + stride, w2 = w1 + stride, w3 = w2 + stride;
        TV a0 = default, a1 = default, a2 = default, a3 = default;
        int step = 2 * TOps.Count, kk = 0;
        for (; kk <= len - step; kk += step)
        {
            var (xl, xh) = TWiden.Float(x + kk);
            var (l0, h0) = LoadWeights(w + kk);
            var (l1, h1) = LoadWeights(w1 + kk);
            var (l2, h2) = LoadWeights(w2 + kk);
            var (l3, h3) = LoadWeights(w3 + kk);
            a0 = TOps.Fma(h0, xh, TOps.Fma(l0, xl, a0));
            a1 = TOps.Fma(h1, xh, TOps.Fma(l1, xl, a1));
            a2 = TOps.Fma(h2, xh, TOps.Fma(l2, xl, a2));
            a3 = TOps.Fma(h3, xh, TOps.Fma(l3, xl, a3));
        }
        float s0 = TOps.SumAcross(a0), s1 = TOps.SumAcross(a1);
        float s2 = TOps.SumAcross(a2), s3 = TOps.SumAcross(a3);
        for (; kk < len; kk++)
        {
            float xv = x[kk];
            s0 += TElement.ToSingle(w[kk]) * xv;
            s1 += TElement.ToSingle(w1[kk]) * xv;
            s2 += TElement.ToSingle(w2[kk]) * xv;
            s3 += TElement.ToSingle(w3[kk]) * xv;
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
