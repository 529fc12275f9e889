using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Decode;
using Managed.Kernels.Layouts;

namespace Managed.Kernels.Matmul;

/// <summary>Scalars of one linear launch, passed by value. Words: 1 when the GEMV may load
/// x and the weights as 16-byte words (see <see cref="GemvKernel.WordsFit"/>).</summary>
internal readonly record struct LinearParams(int M, int N, int K, int HasBias, int Words);

/// <summary>
/// The decode-shape kernel (m &lt;= <see cref="Linear.GemvMaxRows"/>): a group of 4 warps
/// takes 4 output features, one per warp, and every row of x, so each weight is read once
/// per call. With words (the usual case: K a multiple of 8 and 16-byte aligned views) lane l
/// loads 16-byte words l, l + 32, ... of its weight row (8 bf16/fp16 or 4 fp32 elements;
/// a warp's load is 512 consecutive bytes), four words in flight before they are used, and
/// the matching x elements as 16-byte words too; one element per load left the H200 reading
/// bf16 weights at about 165 GB/s. Otherwise lane l reads elements l, l + 32, .... The
/// warp's partial sums are added with shuffles on CUDA, through shared memory elsewhere (the
/// ILGPU CPU accelerator pays a barrier per shuffle; most OpenCL devices have none).
/// </summary>
internal static class GemvKernel
{
    public const int Threads = 128, Warps = 4, Lanes = 32;

    /// <summary>True when rows of x and of the weights start on 16-byte boundaries: K a
    /// multiple of one word's elements (4 float, 8 for 16-bit types) and both views at a
    /// 16-byte offset (device allocations are).</summary>
    public static bool WordsFit(int k, int elementSize, long xOffsetBytes, long wOffsetBytes) =>
        k % (16 / elementSize) == 0 && xOffsetBytes % 16 == 0 && wOffsetBytes % 16 == 0;

    public static void Gemv<TElement, TStorage, TReduce>(ArrayView<float> x,
        ArrayView<TStorage> w, ArrayView<float> bias, ArrayView<float> y, LinearParams p)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TReduce : struct, IRowReduction
    {
        var shared = SharedMemory.Allocate<float>(Threads * Linear.GemvMaxRows);
        int tid = Group.IdxX, lane = tid & (Lanes - 1), warp = tid / Lanes;
        int j = Grid.IdxX * Warps + warp;
        var acc = default(RowSums);
        if (j < p.N)
        {
            if (p.Words != 0) WordRow<TElement, TStorage>(x, w, j, lane, p, ref acc);
            else ElementRow<TElement, TStorage>(x, w, j, lane, p, ref acc);
        }
        int m = p.M;
        if (TReduce.UsesShuffle)
        {
            for (int off = Lanes / 2; off > 0; off >>= 1)
                acc.AddShuffled(m, off);
        }
        else
        {
            // Every thread reaches the barrier (features past n included).
            acc.Store(shared, tid);
            Group.Barrier();
            if (lane == 0) acc.LoadWarpSums(shared, warp);
        }
        if (lane != 0 || j >= p.N) return;
        acc.Write(y, j, p.N, m, p.HasBias != 0 ? bias[j] : 0f);
    }

    /// <summary>Word loads: x and weight rows as 16-byte words; four weight words in flight.
    /// </summary>
    private static void WordRow<TElement, TStorage>(ArrayView<float> x, ArrayView<TStorage> w,
        int j, int lane, LinearParams p, ref RowSums acc)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        var wWords = w.Cast<Word4>().AsAligned(16);
        var xWords = x.Cast<Word4>().AsAligned(16);
        int perWord = 4 * TElement.PerWord; // elements in one 16-byte word of weights
        int words = p.K / perWord;
        long row = (long)j * words;
        int xRowWords = p.K / 4, m = p.M;
        int c = lane;
        for (; c + 3 * Lanes < words; c += 4 * Lanes)
        {
            var w0 = wWords[row + c];
            var w1 = wWords[row + c + Lanes];
            var w2 = wWords[row + c + 2 * Lanes];
            var w3 = wWords[row + c + 3 * Lanes];
            acc.AddWord<TElement, TStorage>(xWords, c, xRowWords, m, w0);
            acc.AddWord<TElement, TStorage>(xWords, c + Lanes, xRowWords, m, w1);
            acc.AddWord<TElement, TStorage>(xWords, c + 2 * Lanes, xRowWords, m, w2);
            acc.AddWord<TElement, TStorage>(xWords, c + 3 * Lanes, xRowWords, m, w3);
        }
        for (; c < words; c += Lanes)
            acc.AddWord<TElement, TStorage>(xWords, c, xRowWords, m, wWords[row + c]);
    }

    /// <summary>Element loads (K or an offset off the 16-byte grid): lane-strided elements,
    /// four in flight.</summary>
    private static void ElementRow<TElement, TStorage>(ArrayView<float> x,
        ArrayView<TStorage> w, int j, int lane, LinearParams p, ref RowSums acc)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        int k = p.K, m = p.M;
        long row = (long)j * k;
        int kk = lane;
        for (; kk + 3 * Lanes < k; kk += 4 * Lanes)
        {
            float w0 = TElement.ToSingle(w[row + kk]);
            float w1 = TElement.ToSingle(w[row + kk + Lanes]);
            float w2 = TElement.ToSingle(w[row + kk + 2 * Lanes]);
            float w3 = TElement.ToSingle(w[row + kk + 3 * Lanes]);
            acc.AddElement(x, kk, k, m, w0);
            acc.AddElement(x, kk + Lanes, k, m, w1);
            acc.AddElement(x, kk + 2 * Lanes, k, m, w2);
            acc.AddElement(x, kk + 3 * Lanes, k, m, w3);
        }
        for (; kk < k; kk += Lanes)
            acc.AddElement(x, kk, k, m, TElement.ToSingle(w[row + kk]));
    }
}

/// <summary>One lane's partial sums of one output feature for up to
/// <see cref="Linear.GemvMaxRows"/> (8) rows of x; rows at or past m are never touched.
/// </summary>
internal struct RowSums
{
    public float R0, R1, R2, R3, R4, R5, R6, R7;

    /// <summary>Adds weight word <paramref name="word"/> (of the row's word index
    /// <paramref name="c"/>) times the matching x elements of every row.</summary>
    public void AddWord<TElement, TStorage>(ArrayView<Word4> xWords, int c, int xRowWords,
        int m, Word4 word)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        if (TElement.PerWord == 1)
        {
            float a = TElement.WidenWord(word.X, 0), b = TElement.WidenWord(word.Y, 0);
            float d = TElement.WidenWord(word.Z, 0), e = TElement.WidenWord(word.W, 0);
            long at = c;
            R0 += Dot4(xWords[at], a, b, d, e);
            if (m > 1) R1 += Dot4(xWords[at + xRowWords], a, b, d, e);
            if (m > 2) R2 += Dot4(xWords[at + 2L * xRowWords], a, b, d, e);
            if (m > 3) R3 += Dot4(xWords[at + 3L * xRowWords], a, b, d, e);
            if (m > 4) R4 += Dot4(xWords[at + 4L * xRowWords], a, b, d, e);
            if (m > 5) R5 += Dot4(xWords[at + 5L * xRowWords], a, b, d, e);
            if (m > 6) R6 += Dot4(xWords[at + 6L * xRowWords], a, b, d, e);
            if (m > 7) R7 += Dot4(xWords[at + 7L * xRowWords], a, b, d, e);
        }
        else
        {
            float a0 = TElement.WidenWord(word.X, 0), a1 = TElement.WidenWord(word.X, 1);
            float b0 = TElement.WidenWord(word.Y, 0), b1 = TElement.WidenWord(word.Y, 1);
            float d0 = TElement.WidenWord(word.Z, 0), d1 = TElement.WidenWord(word.Z, 1);
            float e0 = TElement.WidenWord(word.W, 0), e1 = TElement.WidenWord(word.W, 1);
            long at = 2L * c; // 8 weights span two words of x
            R0 += Dot8(xWords, at, a0, a1, b0, b1, d0, d1, e0, e1);
            if (m > 1) R1 += Dot8(xWords, at + xRowWords, a0, a1, b0, b1, d0, d1, e0, e1);
            if (m > 2) R2 += Dot8(xWords, at + 2L * xRowWords, a0, a1, b0, b1, d0, d1, e0, e1);
            if (m > 3) R3 += Dot8(xWords, at + 3L * xRowWords, a0, a1, b0, b1, d0, d1, e0, e1);
            if (m > 4) R4 += Dot8(xWords, at + 4L * xRowWords, a0, a1, b0, b1, d0, d1, e0, e1);
            if (m > 5) R5 += Dot8(xWords, at + 5L * xRowWords, a0, a1, b0, b1, d0, d1, e0, e1);
            if (m > 6) R6 += Dot8(xWords, at + 6L * xRowWords, a0, a1, b0, b1, d0, d1, e0, e1);
            if (m > 7) R7 += Dot8(xWords, at + 7L * xRowWords, a0, a1, b0, b1, d0, d1, e0, e1);
        }
    }

    /// <summary>Adds weight <paramref name="wk"/> (column <paramref name="kk"/>) times
    /// x[r, kk] for every row r.</summary>
    public void AddElement(ArrayView<float> x, int kk, int k, int m, float wk)
    {
        R0 += wk * x[kk];
        if (m > 1) R1 += wk * x[k + kk];
        if (m > 2) R2 += wk * x[2L * k + kk];
        if (m > 3) R3 += wk * x[3L * k + kk];
        if (m > 4) R4 += wk * x[4L * k + kk];
        if (m > 5) R5 += wk * x[5L * k + kk];
        if (m > 6) R6 += wk * x[6L * k + kk];
        if (m > 7) R7 += wk * x[7L * k + kk];
    }

    /// <summary>One butterfly step of the warp sum, rows below m only.</summary>
    public void AddShuffled(int m, int off)
    {
        R0 += Warp.ShuffleXor(R0, off);
        if (m > 1) R1 += Warp.ShuffleXor(R1, off);
        if (m > 2) R2 += Warp.ShuffleXor(R2, off);
        if (m > 3) R3 += Warp.ShuffleXor(R3, off);
        if (m > 4) R4 += Warp.ShuffleXor(R4, off);
        if (m > 5) R5 += Warp.ShuffleXor(R5, off);
        if (m > 6) R6 += Warp.ShuffleXor(R6, off);
        if (m > 7) R7 += Warp.ShuffleXor(R7, off);
    }

    /// <summary>Row r's sum at shared[r * Threads + tid].</summary>
    public readonly void Store(ArrayView<float> shared, int tid)
    {
        const int t = GemvKernel.Threads;
        shared[tid] = R0;
        shared[t + tid] = R1;
        shared[2 * t + tid] = R2;
        shared[3 * t + tid] = R3;
        shared[4 * t + tid] = R4;
        shared[5 * t + tid] = R5;
        shared[6 * t + tid] = R6;
        shared[7 * t + tid] = R7;
    }

    /// <summary>Each row's sum over the 32 lanes of warp <paramref name="warp"/>, from
    /// <see cref="Store"/>'s layout.</summary>
    public void LoadWarpSums(ArrayView<float> shared, int warp)
    {
        const int w = GemvKernel.Warps;
        R0 = WarpSum(shared, warp);
        R1 = WarpSum(shared, w + warp);
        R2 = WarpSum(shared, 2 * w + warp);
        R3 = WarpSum(shared, 3 * w + warp);
        R4 = WarpSum(shared, 4 * w + warp);
        R5 = WarpSum(shared, 5 * w + warp);
        R6 = WarpSum(shared, 6 * w + warp);
        R7 = WarpSum(shared, 7 * w + warp);
    }

    /// <summary>y[r, j] = sum_r + b for the m rows.</summary>
    public readonly void Write(ArrayView<float> y, int j, int n, int m, float b)
    {
        y[j] = R0 + b;
        if (m > 1) y[n + j] = R1 + b;
        if (m > 2) y[2L * n + j] = R2 + b;
        if (m > 3) y[3L * n + j] = R3 + b;
        if (m > 4) y[4L * n + j] = R4 + b;
        if (m > 5) y[5L * n + j] = R5 + b;
        if (m > 6) y[6L * n + j] = R6 + b;
        if (m > 7) y[7L * n + j] = R7 + b;
    }

    private static float Dot4(Word4 xw, float a, float b, float d, float e) =>
        a * Interop.IntAsFloat(xw.X) + b * Interop.IntAsFloat(xw.Y)
        + d * Interop.IntAsFloat(xw.Z) + e * Interop.IntAsFloat(xw.W);

    private static float Dot8(ArrayView<Word4> xWords, long at, float a0, float a1, float b0,
        float b1, float d0, float d1, float e0, float e1)
    {
        var lo = xWords[at];
        var hi = xWords[at + 1];
        return Dot4(lo, a0, a1, b0, b1) + Dot4(hi, d0, d1, e0, e1);
    }

    /// <summary>Sum of the 32 values of slot <paramref name="slot"/>.</summary>
    private static float WarpSum(ArrayView<float> shared, int slot)
    {
        float s = 0f;
        for (int l = 0; l < GemvKernel.Lanes; l++) s += shared[slot * GemvKernel.Lanes + l];
        return s;
    }
}
