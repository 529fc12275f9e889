using ILGPU;
using Managed.Kernels.Attention;
using Managed.Kernels.Layouts;

namespace Managed.Kernels.Matmul;

/// <summary>Scalars of one linear launch, passed by value.</summary>
internal readonly record struct LinearParams(int M, int N, int K, int HasBias);

/// <summary>
/// The decode-shape kernel (m &lt;= <see cref="Linear.GemvMaxRows"/>): a group of 4 warps
/// takes 4 output features, one per warp. Lane l reads elements l, l + 32, ... of its weight
/// row (a warp's loads of a step are 32 consecutive elements: coalesced), four steps of loads
/// in flight before they are used, widens them in registers and multiplies them with every
/// row of x. The warp's partial sums are added with shuffles on CUDA, through shared memory
/// elsewhere (the ILGPU CPU accelerator pays a barrier per shuffle; most OpenCL devices have
/// none).
/// </summary>
internal static class GemvKernel
{
    public const int Threads = 128, Warps = 4, Lanes = 32;

    public static void Gemv<TElement, TStorage, TReduce>(ArrayView<float> x,
        ArrayView<TStorage> w, ArrayView<float> bias, ArrayView<float> y, LinearParams p)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TReduce : struct, IRowReduction
    {
        var shared = SharedMemory.Allocate<float>(Threads * Linear.GemvMaxRows);
        int tid = Group.IdxX, lane = tid & (Lanes - 1), warp = tid / Lanes;
        int j = Grid.IdxX * Warps + warp, k = p.K, m = p.M;
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
        if (j < p.N)
        {
            long row = (long)j * k;
            int kk = lane;
            for (; kk + 3 * Lanes < k; kk += 4 * Lanes)
            {
                float w0 = TElement.ToSingle(w[row + kk]);
                float w1 = TElement.ToSingle(w[row + kk + Lanes]);
                float w2 = TElement.ToSingle(w[row + kk + 2 * Lanes]);
                float w3 = TElement.ToSingle(w[row + kk + 3 * Lanes]);
                a0 += Dot4(x, kk, w0, w1, w2, w3);
                if (m > 1) a1 += Dot4(x, k + kk, w0, w1, w2, w3);
                if (m > 2) a2 += Dot4(x, 2L * k + kk, w0, w1, w2, w3);
                if (m > 3) a3 += Dot4(x, 3L * k + kk, w0, w1, w2, w3);
            }
            for (; kk < k; kk += Lanes)
            {
                float w0 = TElement.ToSingle(w[row + kk]);
                a0 += w0 * x[kk];
                if (m > 1) a1 += w0 * x[k + kk];
                if (m > 2) a2 += w0 * x[2L * k + kk];
                if (m > 3) a3 += w0 * x[3L * k + kk];
            }
        }
        if (TReduce.UsesShuffle)
        {
            for (int off = Lanes / 2; off > 0; off >>= 1)
            {
                a0 += Warp.ShuffleXor(a0, off);
                if (m > 1) a1 += Warp.ShuffleXor(a1, off);
                if (m > 2) a2 += Warp.ShuffleXor(a2, off);
                if (m > 3) a3 += Warp.ShuffleXor(a3, off);
            }
        }
        else
        {
            // Every thread reaches the barrier (features past n included).
            shared[tid] = a0;
            shared[Threads + tid] = a1;
            shared[2 * Threads + tid] = a2;
            shared[3 * Threads + tid] = a3;
            Group.Barrier();
            if (lane == 0)
            {
                a0 = WarpSum(shared, warp);
                a1 = WarpSum(shared, Warps + warp);
                a2 = WarpSum(shared, 2 * Warps + warp);
                a3 = WarpSum(shared, 3 * Warps + warp);
            }
        }
        if (lane != 0 || j >= p.N) return;
        float b = p.HasBias != 0 ? bias[j] : 0f;
        y[j] = a0 + b;
        if (m > 1) y[p.N + j] = a1 + b;
        if (m > 2) y[2L * p.N + j] = a2 + b;
        if (m > 3) y[3L * p.N + j] = a3 + b;
    }

    /// <summary>Four lane-strided products of one x row from element
    /// <paramref name="at"/>.</summary>
    private static float Dot4(ArrayView<float> x, long at, float w0, float w1, float w2,
        float w3) =>
        w0 * x[at] + w1 * x[at + Lanes] + w2 * x[at + 2 * Lanes] + w3 * x[at + 3 * Lanes];

    /// <summary>Sum of the 32 values of slot <paramref name="slot"/>.</summary>
    private static float WarpSum(ArrayView<float> shared, int slot)
    {
        float s = 0f;
        for (int l = 0; l < Lanes; l++) s += shared[slot * Lanes + l];
        return s;
    }
}
