using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Managed.Kernels.Simd;

/// <summary>
/// Register-blocked products of the CPU attention kernel: 4 rows x 4 vectors of accumulators
/// (16 registers) per inner loop, with 1-row / 1-vector / scalar edges.
/// </summary>
internal static unsafe class MicroKernels<TOps, TV>
    where TOps : struct, ISimd<TV>
    where TV : unmanaged
{
    /// <summary>
    /// S[r, 0..width) = sum_d Q[r, d] kt[d, 0..width) for r &lt; rows. Q is (rows, d) dense,
    /// kt is (d, ld) and S is (rows, ld); width is a multiple of TOps.Count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScoreTile(float* q, float* kt, float* s, int rows, int width, int d, int ld)
    {
        int n = TOps.Count, r = 0;
        for (; r + 4 <= rows; r += 4)
        {
            float* q0 = q + r * d, q1 = q0 + d, q2 = q1 + d, q3 = q2 + d;
            int c = 0;
            for (; c + 4 * n <= width; c += 4 * n)
            {
                TV a00 = default, a01 = default, a02 = default, a03 = default;
                TV a10 = default, a11 = default, a12 = default, a13 = default;
                TV a20 = default, a21 = default, a22 = default, a23 = default;
                TV a30 = default, a31 = default, a32 = default, a33 = default;
                float* kp = kt + c;
                for (int i = 0; i < d; i++, kp += ld)
                {
                    TV k0 = TOps.Load(kp), k1 = TOps.Load(kp + n), k2 = TOps.Load(kp + 2 * n),
                        k3 = TOps.Load(kp + 3 * n);
                    TV b = TOps.Broadcast(q0[i]);
                    a00 = TOps.Fma(b, k0, a00); a01 = TOps.Fma(b, k1, a01);
                    a02 = TOps.Fma(b, k2, a02); a03 = TOps.Fma(b, k3, a03);
                    b = TOps.Broadcast(q1[i]);
                    a10 = TOps.Fma(b, k0, a10); a11 = TOps.Fma(b, k1, a11);
                    a12 = TOps.Fma(b, k2, a12); a13 = TOps.Fma(b, k3, a13);
                    b = TOps.Broadcast(q2[i]);
                    a20 = TOps.Fma(b, k0, a20); a21 = TOps.Fma(b, k1, a21);
                    a22 = TOps.Fma(b, k2, a22); a23 = TOps.Fma(b, k3, a23);
                    b = TOps.Broadcast(q3[i]);
                    a30 = TOps.Fma(b, k0, a30); a31 = TOps.Fma(b, k1, a31);
                    a32 = TOps.Fma(b, k2, a32); a33 = TOps.Fma(b, k3, a33);
                }
                float* s0 = s + r * ld + c, s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld;
                TOps.Store(a00, s0); TOps.Store(a01, s0 + n); TOps.Store(a02, s0 + 2 * n); TOps.Store(a03, s0 + 3 * n);
                TOps.Store(a10, s1); TOps.Store(a11, s1 + n); TOps.Store(a12, s1 + 2 * n); TOps.Store(a13, s1 + 3 * n);
                TOps.Store(a20, s2); TOps.Store(a21, s2 + n); TOps.Store(a22, s2 + 2 * n); TOps.Store(a23, s2 + 3 * n);
                TOps.Store(a30, s3); TOps.Store(a31, s3 + n); TOps.Store(a32, s3 + 2 * n); TOps.Store(a33, s3 + 3 * n);
            }
            for (; c < width; c += n)
            {
                TV a0 = default, a1 = default, a2 = default, a3 = default;
                float* kp = kt + c;
                for (int i = 0; i < d; i++, kp += ld)
                {
                    TV k0 = TOps.Load(kp);
                    a0 = TOps.Fma(TOps.Broadcast(q0[i]), k0, a0);
                    a1 = TOps.Fma(TOps.Broadcast(q1[i]), k0, a1);
                    a2 = TOps.Fma(TOps.Broadcast(q2[i]), k0, a2);
                    a3 = TOps.Fma(TOps.Broadcast(q3[i]), k0, a3);
                }
                float* s0 = s + r * ld + c;
                TOps.Store(a0, s0); TOps.Store(a1, s0 + ld); TOps.Store(a2, s0 + 2 * ld); TOps.Store(a3, s0 + 3 * ld);
            }
        }
        for (; r < rows; r++)
        {
            float* q0 = q + r * d;
            for (int c = 0; c < width; c += n)
            {
                TV a0 = default;
                float* kp = kt + c;
                for (int i = 0; i < d; i++, kp += ld) a0 = TOps.Fma(TOps.Broadcast(q0[i]), TOps.Load(kp), a0);
                TOps.Store(a0, s + r * ld + c);
            }
        }
    }

    /// <summary>
    /// S[r, j] = sum_c Q[r, c] K[j, c] for r &lt; rows, j &lt; cols: Q is (rows, d) dense, K is
    /// (cols, d) with rows <paramref name="kStride"/> apart (rows of the key tensor, read in
    /// place: decode), S is (rows, ld). Four query rows share each load of a key; when d is a
    /// whole number of vectors, four keys share each load of a query row too, and the 16
    /// dot products are reduced four at a time (<see cref="ISimd{TV}.SumAcross4"/>: the
    /// horizontal sums had cost as much as the multiply-adds). Every score is the same
    /// float either way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RowScores(float* q, int rows, int d, float* k, nint kStride, int cols,
        float* s, int ld)
    {
        int n = TOps.Count, tail = d - d % n, r = 0;
        for (; r + 4 <= rows; r += 4)
        {
            float* q0 = q + r * d, q1 = q0 + d, q2 = q1 + d, q3 = q2 + d;
            int j = 0;
            if (tail == d)
                for (; j + 4 <= cols; j += 4)
                    ScoreBlock(q0, d, k + j * kStride, kStride, s + r * ld + j, ld);
            for (; j < cols; j++)
            {
                float* kj = k + j * kStride;
                TV a0 = default, a1 = default, a2 = default, a3 = default;
                for (int c = 0; c < tail; c += n)
                {
                    TV kv = TOps.Load(kj + c);
                    a0 = TOps.Fma(TOps.Load(q0 + c), kv, a0);
                    a1 = TOps.Fma(TOps.Load(q1 + c), kv, a1);
                    a2 = TOps.Fma(TOps.Load(q2 + c), kv, a2);
                    a3 = TOps.Fma(TOps.Load(q3 + c), kv, a3);
                }
                float s0 = TOps.SumAcross(a0), s1 = TOps.SumAcross(a1);
                float s2 = TOps.SumAcross(a2), s3 = TOps.SumAcross(a3);
                for (int c = tail; c < d; c++)
                {
                    s0 += q0[c] * kj[c]; s1 += q1[c] * kj[c];
                    s2 += q2[c] * kj[c]; s3 += q3[c] * kj[c];
                }
                float* sp = s + r * ld + j;
                sp[0] = s0; sp[ld] = s1; sp[2 * ld] = s2; sp[3 * ld] = s3;
            }
        }
        for (; r < rows; r++)
        {
            float* q0 = q + r * d;
            for (int j = 0; j < cols; j++)
            {
                float* kj = k + j * kStride;
                TV a0 = default;
                for (int c = 0; c < tail; c += n) a0 = TOps.Fma(TOps.Load(q0 + c), TOps.Load(kj + c), a0);
                float s0 = TOps.SumAcross(a0);
                for (int c = tail; c < d; c++) s0 += q0[c] * kj[c];
                s[r * ld + j] = s0;
            }
        }
    }

    /// <summary>S[r, j] for 4 query rows (d apart from <paramref name="q0"/>) and 4 keys
    /// (<paramref name="kStride"/> apart), d a multiple of the vector width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoreBlock(float* q0, int d, float* k0, nint kStride, float* s, int ld)
    {
        int n = TOps.Count;
        float* q1 = q0 + d, q2 = q1 + d, q3 = q2 + d;
        float* k1 = k0 + kStride, k2 = k1 + kStride, k3 = k2 + kStride;
        TV a00 = default, a01 = default, a02 = default, a03 = default;
        TV a10 = default, a11 = default, a12 = default, a13 = default;
        TV a20 = default, a21 = default, a22 = default, a23 = default;
        TV a30 = default, a31 = default, a32 = default, a33 = default;
        for (int c = 0; c < d; c += n)
        {
            TV b0 = TOps.Load(k0 + c), b1 = TOps.Load(k1 + c), b2 = TOps.Load(k2 + c),
                b3 = TOps.Load(k3 + c);
            TV x = TOps.Load(q0 + c);
            a00 = TOps.Fma(x, b0, a00); a01 = TOps.Fma(x, b1, a01);
            a02 = TOps.Fma(x, b2, a02); a03 = TOps.Fma(x, b3, a03);
            x = TOps.Load(q1 + c);
            a10 = TOps.Fma(x, b0, a10); a11 = TOps.Fma(x, b1, a11);
            a12 = TOps.Fma(x, b2, a12); a13 = TOps.Fma(x, b3, a13);
            x = TOps.Load(q2 + c);
            a20 = TOps.Fma(x, b0, a20); a21 = TOps.Fma(x, b1, a21);
            a22 = TOps.Fma(x, b2, a22); a23 = TOps.Fma(x, b3, a23);
            x = TOps.Load(q3 + c);
            a30 = TOps.Fma(x, b0, a30); a31 = TOps.Fma(x, b1, a31);
            a32 = TOps.Fma(x, b2, a32); a33 = TOps.Fma(x, b3, a33);
        }
        TOps.SumAcross4(a00, a01, a02, a03).Store(s);
        TOps.SumAcross4(a10, a11, a12, a13).Store(s + ld);
        TOps.SumAcross4(a20, a21, a22, a23).Store(s + 2 * ld);
        TOps.SumAcross4(a30, a31, a32, a33).Store(s + 3 * ld);
    }

    /// <summary>
    /// O[r, 0..dv) = alpha[r] O[r, 0..dv) + sum_{j &lt; cols} P[r, j] V[j, 0..dv) for r &lt; rows
    /// (the online softmax's rescale folded into the accumulator loads). P is (rows, ld), V is
    /// (cols, dv) with rows <paramref name="vStride"/> apart (rows of the value tensor), O is
    /// (rows, dv) dense, alpha is (rows).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AccumulateValues(float* pm, float* v, float* o, float* alpha, int rows, int cols,
        int dv, int ld, nint vStride)
    {
        int n = TOps.Count, r = 0;
        for (; r + 4 <= rows; r += 4)
        {
            float* p0 = pm + r * ld, p1 = p0 + ld, p2 = p1 + ld, p3 = p2 + ld;
            float* o0 = o + r * dv, o1 = o0 + dv, o2 = o1 + dv, o3 = o2 + dv;
            TV al0 = TOps.Broadcast(alpha[r]), al1 = TOps.Broadcast(alpha[r + 1]);
            TV al2 = TOps.Broadcast(alpha[r + 2]), al3 = TOps.Broadcast(alpha[r + 3]);
            int c = 0;
            for (; c + 4 * n <= dv; c += 4 * n)
            {
                TV a00 = TOps.Mul(TOps.Load(o0 + c), al0), a01 = TOps.Mul(TOps.Load(o0 + c + n), al0);
                TV a02 = TOps.Mul(TOps.Load(o0 + c + 2 * n), al0), a03 = TOps.Mul(TOps.Load(o0 + c + 3 * n), al0);
                TV a10 = TOps.Mul(TOps.Load(o1 + c), al1), a11 = TOps.Mul(TOps.Load(o1 + c + n), al1);
                TV a12 = TOps.Mul(TOps.Load(o1 + c + 2 * n), al1), a13 = TOps.Mul(TOps.Load(o1 + c + 3 * n), al1);
                TV a20 = TOps.Mul(TOps.Load(o2 + c), al2), a21 = TOps.Mul(TOps.Load(o2 + c + n), al2);
                TV a22 = TOps.Mul(TOps.Load(o2 + c + 2 * n), al2), a23 = TOps.Mul(TOps.Load(o2 + c + 3 * n), al2);
                TV a30 = TOps.Mul(TOps.Load(o3 + c), al3), a31 = TOps.Mul(TOps.Load(o3 + c + n), al3);
                TV a32 = TOps.Mul(TOps.Load(o3 + c + 2 * n), al3), a33 = TOps.Mul(TOps.Load(o3 + c + 3 * n), al3);
                float* vp = v + c;
                for (int j = 0; j < cols; j++, vp += vStride)
                {
                    TV v0 = TOps.Load(vp), v1 = TOps.Load(vp + n), v2 = TOps.Load(vp + 2 * n), v3 = TOps.Load(vp + 3 * n);
                    TV b = TOps.Broadcast(p0[j]);
                    a00 = TOps.Fma(b, v0, a00); a01 = TOps.Fma(b, v1, a01);
                    a02 = TOps.Fma(b, v2, a02); a03 = TOps.Fma(b, v3, a03);
                    b = TOps.Broadcast(p1[j]);
                    a10 = TOps.Fma(b, v0, a10); a11 = TOps.Fma(b, v1, a11);
                    a12 = TOps.Fma(b, v2, a12); a13 = TOps.Fma(b, v3, a13);
                    b = TOps.Broadcast(p2[j]);
                    a20 = TOps.Fma(b, v0, a20); a21 = TOps.Fma(b, v1, a21);
                    a22 = TOps.Fma(b, v2, a22); a23 = TOps.Fma(b, v3, a23);
                    b = TOps.Broadcast(p3[j]);
                    a30 = TOps.Fma(b, v0, a30); a31 = TOps.Fma(b, v1, a31);
                    a32 = TOps.Fma(b, v2, a32); a33 = TOps.Fma(b, v3, a33);
                }
                TOps.Store(a00, o0 + c); TOps.Store(a01, o0 + c + n); TOps.Store(a02, o0 + c + 2 * n); TOps.Store(a03, o0 + c + 3 * n);
                TOps.Store(a10, o1 + c); TOps.Store(a11, o1 + c + n); TOps.Store(a12, o1 + c + 2 * n); TOps.Store(a13, o1 + c + 3 * n);
                TOps.Store(a20, o2 + c); TOps.Store(a21, o2 + c + n); TOps.Store(a22, o2 + c + 2 * n); TOps.Store(a23, o2 + c + 3 * n);
                TOps.Store(a30, o3 + c); TOps.Store(a31, o3 + c + n); TOps.Store(a32, o3 + c + 2 * n); TOps.Store(a33, o3 + c + 3 * n);
            }
            for (; c + n <= dv; c += n)
            {
                TV a0 = TOps.Mul(TOps.Load(o0 + c), al0), a1 = TOps.Mul(TOps.Load(o1 + c), al1);
                TV a2 = TOps.Mul(TOps.Load(o2 + c), al2), a3 = TOps.Mul(TOps.Load(o3 + c), al3);
                float* vp = v + c;
                for (int j = 0; j < cols; j++, vp += vStride)
                {
                    TV v0 = TOps.Load(vp);
                    a0 = TOps.Fma(TOps.Broadcast(p0[j]), v0, a0);
                    a1 = TOps.Fma(TOps.Broadcast(p1[j]), v0, a1);
                    a2 = TOps.Fma(TOps.Broadcast(p2[j]), v0, a2);
                    a3 = TOps.Fma(TOps.Broadcast(p3[j]), v0, a3);
                }
                TOps.Store(a0, o0 + c); TOps.Store(a1, o1 + c); TOps.Store(a2, o2 + c); TOps.Store(a3, o3 + c);
            }
            if (c < dv) ScalarColumns(pm + r * ld, v, o + r * dv, alpha + r, 4, cols, dv, ld, c, vStride);
        }
        for (; r < rows; r++)
        {
            float* p0 = pm + r * ld, o0 = o + r * dv;
            TV al0 = TOps.Broadcast(alpha[r]);
            int c = 0;
            for (; c + n <= dv; c += n)
            {
                TV a0 = TOps.Mul(TOps.Load(o0 + c), al0);
                float* vp = v + c;
                for (int j = 0; j < cols; j++, vp += vStride) a0 = TOps.Fma(TOps.Broadcast(p0[j]), TOps.Load(vp), a0);
                TOps.Store(a0, o0 + c);
            }
            if (c < dv) ScalarColumns(p0, v, o0, alpha + r, 1, cols, dv, ld, c, vStride);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScalarColumns(float* pm, float* v, float* o, float* alpha, int rows, int cols,
        int dv, int ld, int c0, nint vStride)
    {
        for (int r = 0; r < rows; r++)
            for (int c = c0; c < dv; c++)
            {
                float acc = o[r * dv + c] * alpha[r];
                for (int j = 0; j < cols; j++) acc = MathF.FusedMultiplyAdd(pm[r * ld + j], v[j * vStride + c], acc);
                o[r * dv + c] = acc;
            }
    }
}
