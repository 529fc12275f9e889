using ILGPU;
using ILGPU.Algorithms;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Decode;

/// <summary>
/// The last step of a decode on an ILGPU device: the parts' (output, maximum, sum) of every
/// output row combined as the host merge does (empty parts skipped; non-softmax normalizers
/// add the parts unweighted). One group per (row, block of <see cref="Columns"/> value
/// columns), <see cref="Slices"/> slices of the parts per column, each thread keeping four
/// parts' loads in flight: the merge is a handful of dependent round trips to memory, not
/// one per part. One group per row walking 33 parts per column took 22 us of a 67 us call
/// (H200, ncu, fp16, one sequence, 32k keys); a thread per element walking the parts twice
/// took 25-40 us.
/// </summary>
internal static class DecodeMergeKernel
{
    public const int Threads = 128, Columns = 32, Slices = Threads / Columns;

    /// <summary>Groups of a merge of <paramref name="rows"/> output rows.</summary>
    public static int Groups(int rows, int valueDim) =>
        rows * ((valueDim + Columns - 1) / Columns);

    public static void Merge<TNorm>(ArrayView<float> partO, ArrayView<float> partM,
        ArrayView<float> partL, ArrayView<float> output, ArrayView<float> logSumExp,
        DecodeParams p, TNorm norm)
        where TNorm : struct, INormalizer
    {
        var maxima = SharedMemory.Allocate<float>(Threads);
        var sums = SharedMemory.Allocate<float>(Threads);
        var columnSums = SharedMemory.Allocate<float>(Threads);
        int tid = Group.IdxX, dv = p.ValueDim, splits = p.Splits, qn = p.Vectors;
        int blocks = (dv + Columns - 1) / Columns;
        int row = Grid.IdxX / blocks, block = Grid.IdxX - row * blocks;
        int r = row % p.Rows, bh = row / p.Rows;
        int h = bh % p.Heads, b = bh / p.Heads;
        int kvh = h / p.Group, v = (h - kvh * p.Group) * p.Rows + r;
        long item0 = ((long)b * p.KvHeads + kvh) * splits;
        int held = XMath.Min(Threads, splits);

        // The largest part maximum: each thread's parts, then all threads' in shared memory.
        float m = float.NegativeInfinity;
        for (int s = tid; s < splits; s += Threads)
            m = XMath.Max(m, partM[(item0 + s) * qn + v]);
        maxima[tid] = m;
        Group.Barrier();
        m = float.NegativeInfinity;
        for (int k = 0; k < held; k++) m = XMath.Max(m, maxima[k]);

        // The weighted sum of the parts' sums, the same way.
        float l = 0f;
        for (int s = tid; s < splits; s += Threads)
        {
            long at = (item0 + s) * qn + v;
            float w = Weight<TNorm>(partM[at], m), x = partL[at];
            l += w != 0f ? x * w : 0f;
        }
        sums[tid] = l;
        Group.Barrier();
        l = 0f;
        for (int k = 0; k < held; k++) l += sums[k];

        // Each thread's column over its slice of the parts, four parts at a time. Loads are
        // unconditional (a skipped part's output may be anything: it is selected away).
        int slice = tid / Columns, c = block * Columns + tid - slice * Columns;
        int col = XMath.Min(c, dv - 1);
        long step = (long)Slices * qn;
        float o0 = 0f, o1 = 0f, o2 = 0f, o3 = 0f;
        int part = slice;
        for (; part + 3 * Slices < splits; part += 4 * Slices)
        {
            long a0 = (item0 + part) * qn + v, a1 = a0 + step, a2 = a1 + step, a3 = a2 + step;
            float x0 = partO[a0 * dv + col], x1 = partO[a1 * dv + col];
            float x2 = partO[a2 * dv + col], x3 = partO[a3 * dv + col];
            float w0 = Weight<TNorm>(partM[a0], m), w1 = Weight<TNorm>(partM[a1], m);
            float w2 = Weight<TNorm>(partM[a2], m), w3 = Weight<TNorm>(partM[a3], m);
            o0 += w0 != 0f ? x0 * w0 : 0f;
            o1 += w1 != 0f ? x1 * w1 : 0f;
            o2 += w2 != 0f ? x2 * w2 : 0f;
            o3 += w3 != 0f ? x3 * w3 : 0f;
        }
        for (; part < splits; part += Slices)
        {
            long a = (item0 + part) * qn + v;
            float x = partO[a * dv + col], w = Weight<TNorm>(partM[a], m);
            o0 += w != 0f ? x * w : 0f;
        }
        columnSums[tid] = (o0 + o1) + (o2 + o3);
        Group.Barrier();
        if (slice == 0 && c < dv)
        {
            float o = columnSums[tid];
            for (int k = 1; k < Slices; k++) o += columnSums[k * Columns + tid];
            output[(long)row * dv + c] = !TNorm.DividesBySum ? o : l == 0f ? 0f : o / l;
        }
        if (tid == 0 && block == 0 && p.HasLogSumExp != 0)
            logSumExp[row] = l == 0f ? float.NegativeInfinity
                : TNorm.IsSoftmax ? m + XMath.Log(l) : XMath.Log(l);
    }

    /// <summary>A part's weight: 0 when no part has a key (maximum -inf), else exp(part max -
    /// max) for softmax (0 for an empty part) and 1 for the other normalizers.</summary>
    private static float Weight<TNorm>(float partMax, float max)
        where TNorm : struct, INormalizer =>
        max == float.NegativeInfinity ? 0f
            : TNorm.IsSoftmax ? XMath.Exp(partMax - max) : 1f;
}
