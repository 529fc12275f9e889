using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Decode;

/// <summary>Scalars of one decode launch, passed by value.</summary>
internal readonly record struct DecodeParams(int Batch, int Heads, int KvHeads, int Rows,
    int HeadDim, int ValueDim, int Splits, int QueryBlocks, int BlockVectors, int PageSize,
    int MaxPagesPerSequence, float Scale, int HasStats, int HasLogSumExp, int Capacity,
    int HasPositions)
{
    public int Group => Heads / KvHeads;
    public int Vectors => Group * Rows;
}

internal delegate void DecodeLauncher<TStorage, TScore, TMask, TNorm>(AcceleratorStream stream,
    KernelConfig config, ArrayView<float> query, ArrayView<TStorage> keys,
    ArrayView<TStorage> values, ArrayView<int> pageTable, ArrayView<int> lengths,
    ArrayView<int> kept, ArrayView<int> positions, ArrayView<int> compensationSlot,
    ArrayView<float> compensationLogCount, ArrayView<float> rowStats, ArrayView<float> partO,
    ArrayView<float> partM, ArrayView<float> partL, DecodeParams p, TScore score, TMask mask,
    TNorm norm)
    where TStorage : unmanaged;

internal delegate void DecodeMergeLauncher<TNorm>(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> partO, ArrayView<float> partM, ArrayView<float> partL,
    ArrayView<float> output, ArrayView<float> logSumExp, DecodeParams p, TNorm norm);

// The ILGPU path: one group per (sequence, KV head, part, block of query vectors), then a merge
// kernel over the parts. Runs under the device's lease.
public static partial class DecodeAttention
{
    /// <summary>Largest headDim and valueDim of the ILGPU decode kernel.</summary>
    public const int MaxIlgpuDim = 256;

    private const int SlotQuery = 0, SlotOutput = 1, SlotLse = 2, SlotPartO = 3, SlotPartM = 4,
        SlotPartL = 5, SlotStats = 6, SlotScratch = 7;

    private static void RunIlgpu<TElement, TStorage, TScore, TMask, TNorm>(KvCache<TStorage> cache,
        DecodeProblem pr, ArrayView<float> query, ArrayView<float> output,
        ArrayView<float> logSumExp, TScore score, TMask mask, TNorm norm)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        var ws = cache.Device.Workspace;
        int rows = pr.Batch * pr.Heads * pr.Rows;
        if (!TNorm.NeedsLogSumExp)
        {
            IlgpuPass<TElement, TStorage, TScore, TMask, TNorm>(cache, pr, query, output,
                logSumExp, default, score, mask, norm);
            return;
        }
        var stats = ws.Get<float>(SlotStats, rows);
        var scratch = ws.Get<float>(SlotScratch, output.Length);
        IlgpuPass<TElement, TStorage, TScore, TMask, SoftmaxNormalizer>(cache, pr, query, scratch,
            stats, default, score, mask, default);
        IlgpuPass<TElement, TStorage, TScore, TMask, TNorm>(cache, pr, query, output, logSumExp,
            stats, score, mask, norm);
    }

    private static void IlgpuPass<TElement, TStorage, TScore, TMask, TNorm>(
        KvCache<TStorage> cache, DecodeProblem pr, ArrayView<float> query,
        ArrayView<float> output, ArrayView<float> logSumExp, ArrayView<float> rowStats,
        TScore score, TMask mask, TNorm norm)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        var device = cache.Device;
        var ws = device.Workspace;
        int vectors = pr.Vectors, block = DecodeKernel.BlockVectors(pr.HeadDim, pr.ValueDim);
        int queryBlocks = (vectors + block - 1) / block;
        int items = pr.Batch * pr.KvHeads * pr.Splits;
        var partO = ws.Get<float>(SlotPartO, (long)items * vectors * pr.ValueDim);
        var partM = ws.Get<float>(SlotPartM, (long)items * vectors);
        var partL = ws.Get<float>(SlotPartL, (long)items * vectors);
        var p = new DecodeParams(pr.Batch, pr.Heads, pr.KvHeads, pr.Rows, pr.HeadDim,
            pr.ValueDim, pr.Splits, queryBlocks, block, cache.PageSize, cache.MaxPagesPerSequence,
            pr.Scale, rowStats.Length > 0 ? 1 : 0, logSumExp.Length > 0 ? 1 : 0, cache.Capacity,
            cache.HasPositions ? 1 : 0);
        if (rowStats.Length == 0) rowStats = partM; // bound, never read
        if (logSumExp.Length == 0) logSumExp = partM; // bound, never written
        var decode = device.Kernels.Get<DecodeLauncher<TStorage, TScore, TMask, TNorm>>(
            DecodeMethods<TElement, TStorage, TScore, TMask, TNorm>.Decode);
        decode(device.Ilgpu.DefaultStream, new KernelConfig(items * queryBlocks,
                DecodeKernel.Threads), query, cache.DeviceKeys, cache.DeviceValues,
            cache.DevicePageTable, cache.DeviceLengths, cache.DeviceKept, cache.DevicePositions,
            cache.DeviceCompensationSlot, cache.DeviceCompensationLogCount, rowStats, partO,
            partM, partL, p, score, mask, norm);
        long elements = (long)pr.Batch * pr.Heads * pr.Rows * pr.ValueDim;
        var merge = device.Kernels.Get<DecodeMergeLauncher<TNorm>>(
            DecodeMethods<TElement, TStorage, TScore, TMask, TNorm>.Merge);
        merge(device.Ilgpu.DefaultStream, new KernelConfig((int)((elements + 127) / 128), 128),
            partO, partM, partL, output, logSumExp, p, norm);
    }
}

/// <summary>The decode kernels of one variant and storage type, made once.</summary>
internal static class DecodeMethods<TElement, TStorage, TScore, TMask, TNorm>
    where TElement : struct, IElement<TStorage>
    where TStorage : unmanaged
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate
    where TNorm : struct, INormalizer
{
    public static readonly MethodInfo Decode = typeof(DecodeKernel)
        .GetMethod(nameof(DecodeKernel.Partial))!
        .MakeGenericMethod(typeof(TElement), typeof(TStorage), typeof(TScore), typeof(TMask),
            typeof(TNorm));

    public static readonly MethodInfo Merge = typeof(DecodeKernel)
        .GetMethod(nameof(DecodeKernel.MergeParts))!.MakeGenericMethod(typeof(TNorm));
}

/// <summary>
/// The split-KV decode kernels. <see cref="Partial"/>: one group of 128 threads per (sequence,
/// KV head, part, block of query vectors); the block's scaled query vectors and running output
/// stay in shared memory; per tile of 16 keys the K rows are widened into shared memory, the
/// scores of every (vector, key) pair computed, one thread per vector updates its online
/// softmax, the V rows replace the K rows and every (vector, column) accumulates. Each K and V
/// row of the part is read once per block: the query heads of a KV head share it (GQA).
/// Parts and tiles are over the head's kept slots; masks and score modifiers see positions.
/// <see cref="MergeParts"/>: one thread per output element combines the parts.
/// </summary>
internal static class DecodeKernel
{
    public const int Threads = 128, TileKeys = 16;
    private const int VectorFloats = 2048, TileStride = MaxDim + 1, MaxDim = 256, MaxVectors = 32;

    /// <summary>Query vectors per group: the block's Q and O each fit 2048 floats.</summary>
    public static int BlockVectors(int headDim, int valueDim) =>
        Math.Min(MaxVectors, VectorFloats / Math.Max(headDim, valueDim));

    public static void Partial<TElement, TStorage, TScore, TMask, TNorm>(
        ArrayView<float> query, ArrayView<TStorage> keys, ArrayView<TStorage> values,
        ArrayView<int> pageTable, ArrayView<int> lengths, ArrayView<int> kept,
        ArrayView<int> positions, ArrayView<int> compensationSlot,
        ArrayView<float> compensationLogCount, ArrayView<float> rowStats,
        ArrayView<float> partO, ArrayView<float> partM, ArrayView<float> partL, DecodeParams p,
        TScore score, TMask mask, TNorm norm)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        var qs = SharedMemory.Allocate<float>(VectorFloats);
        var os = SharedMemory.Allocate<float>(VectorFloats);
        var kv = SharedMemory.Allocate<float>(TileKeys * TileStride);
        var ps = SharedMemory.Allocate<float>(MaxVectors * TileKeys);
        var ms = SharedMemory.Allocate<float>(MaxVectors);
        var ls = SharedMemory.Allocate<float>(MaxVectors);
        var alphas = SharedMemory.Allocate<float>(MaxVectors);

        int tid = Group.IdxX, blk = Grid.IdxX;
        int qb = blk % p.QueryBlocks, rest = blk / p.QueryBlocks;
        int s = rest % p.Splits;
        rest /= p.Splits;
        int kvh = rest % p.KvHeads, b = rest / p.KvHeads;
        int g = p.Group, rows = p.Rows, d = p.HeadDim, dv = p.ValueDim, qn = p.Vectors;
        int v0 = qb * p.BlockVectors, nv = XMath.Min(p.BlockVectors, qn - v0);
        int bh = b * p.KvHeads + kvh, length = kept[bh], pos0 = lengths[b] - rows;
        int item = bh * p.Splits + s;
        int cSlot = compensationSlot[bh];
        float cLog = compensationLogCount[bh];

        for (int e = tid; e < nv * d; e += Threads)
        {
            int v = e / d, c = e - v * d, qv = v0 + v;
            int h = kvh * g + qv / rows, r = qv - qv / rows * rows;
            qs[e] = query[((long)(b * p.Heads + h) * rows + r) * d + c] * p.Scale;
        }
        for (int e = tid; e < nv * dv; e += Threads) os[e] = 0f;
        for (int v = tid; v < nv; v += Threads)
        {
            int qv = v0 + v, h = kvh * g + qv / rows, r = qv - qv / rows * rows;
            float stat = p.HasStats != 0 ? rowStats[(b * p.Heads + h) * rows + r] : 0f;
            ms[v] = TNorm.IsSoftmax ? float.NegativeInfinity : norm.RowParameter(pos0 + r, stat);
            ls[v] = 0f;
        }

        // This part's keys, narrowed to those any head of the group can reach (group-uniform).
        int chunk = ((length + p.Splits - 1) / p.Splits + 15) & ~15;
        int lo = XMath.Min(s * chunk, length), hi = XMath.Min(lo + chunk, length);
        int kStart = int.MaxValue, kEnd = int.MinValue;
        for (int j = 0; j < g; j++)
        {
            kStart = XMath.Min(kStart, mask.KeyStart(b, kvh * g + j, pos0, pos0 + rows));
            kEnd = XMath.Max(kEnd, mask.KeyEnd(b, kvh * g + j, pos0, pos0 + rows));
        }
        lo = XMath.Max(lo, SlotOf(positions, p, bh, length, kStart));
        hi = XMath.Min(hi, SlotOf(positions, p, bh, length, kEnd));
        Group.Barrier();

        for (int k0 = lo; k0 < hi; k0 += TileKeys)
        {
            int n = XMath.Min(TileKeys, hi - k0);
            // Positions increase over slots, so the tile's lie in [p0, p1).
            int p0 = Pos(positions, p, bh, k0), p1 = Pos(positions, p, bh, k0 + n - 1) + 1;
            bool any = false;
            for (int j = 0; j < g; j++)
                any |= mask.Classify(b, kvh * g + j, pos0, pos0 + rows, p0, p1) != TileKind.Empty;
            if (!any) continue; // uniform across the group

            for (int e = tid; e < TileKeys * d; e += Threads)
            {
                int j = e / d, c = e - j * d;
                kv[j * TileStride + c] = j < n
                    ? TElement.ToSingle(keys[RowOffset(pageTable, p, b, kvh, k0 + j) * d + c]) : 0f;
            }
            Group.Barrier();

            for (int e = tid; e < nv * TileKeys; e += Threads)
            {
                int v = e / TileKeys, j = e - v * TileKeys, qv = v0 + v;
                int h = kvh * g + qv / rows, pos = pos0 + qv - qv / rows * rows, k = k0 + j;
                float x = float.NegativeInfinity;
                if (j < n)
                {
                    int kp = Pos(positions, p, bh, k);
                    var kind = mask.Classify(b, h, pos0, pos0 + rows, p0, p1);
                    if (kind == TileKind.Full
                        || (kind == TileKind.Partial && mask.Allows(b, h, pos, kp)))
                    {
                        float dot = 0f;
                        for (int c = 0; c < d; c++) dot += qs[v * d + c] * kv[j * TileStride + c];
                        x = score.Apply(dot, b, h, pos, kp);
                        if (k == cSlot) x += cLog; // the compensation row stands for N rows
                    }
                }
                ps[v * TileKeys + j] = x;
            }
            Group.Barrier();

            if (tid < nv)
            {
                float alpha = 1f, sum = 0f;
                if (TNorm.IsSoftmax)
                {
                    float mOld = ms[tid], mNew = mOld;
                    for (int j = 0; j < TileKeys; j++) mNew = XMath.Max(mNew, ps[tid * TileKeys + j]);
                    if (mNew != float.NegativeInfinity)
                    {
                        alpha = mOld == mNew ? 1f : XMath.Exp(mOld - mNew);
                        for (int j = 0; j < TileKeys; j++)
                        {
                            float x = ps[tid * TileKeys + j];
                            float e = x == float.NegativeInfinity ? 0f : XMath.Exp(x - mNew);
                            ps[tid * TileKeys + j] = e;
                            sum += e;
                        }
                        ms[tid] = mNew;
                    }
                    else
                        for (int j = 0; j < TileKeys; j++) ps[tid * TileKeys + j] = 0f;
                }
                else
                    for (int j = 0; j < TileKeys; j++)
                    {
                        float w = norm.Weight(ps[tid * TileKeys + j], ms[tid]);
                        ps[tid * TileKeys + j] = w;
                        sum += w;
                    }
                ls[tid] = ls[tid] * alpha + sum;
                alphas[tid] = alpha;
            }
            // V replaces K: every score was computed before the barrier above.
            for (int e = tid; e < TileKeys * dv; e += Threads)
            {
                int j = e / dv, c = e - j * dv;
                kv[j * TileStride + c] = j < n
                    ? TElement.ToSingle(values[RowOffset(pageTable, p, b, kvh, k0 + j) * dv + c]) : 0f;
            }
            Group.Barrier();

            for (int e = tid; e < nv * dv; e += Threads)
            {
                int v = e / dv, c = e - v * dv;
                float acc = os[e] * alphas[v];
                for (int j = 0; j < TileKeys; j++)
                {
                    float w = ps[v * TileKeys + j];
                    if (w != 0f) acc += w * kv[j * TileStride + c];
                }
                os[e] = acc;
            }
            Group.Barrier();
        }

        for (int e = tid; e < nv * dv; e += Threads)
            partO[((long)item * qn + v0) * dv + e] = os[e];
        for (int v = tid; v < nv; v += Threads)
        {
            partM[(long)item * qn + v0 + v] = TNorm.IsSoftmax ? ms[v] : 0f;
            partL[(long)item * qn + v0 + v] = ls[v];
        }
    }

    /// <summary>Original position of slot <paramref name="slot"/> of head bh.</summary>
    private static int Pos(ArrayView<int> positions, DecodeParams p, int bh, int slot) =>
        p.HasPositions != 0 ? positions[(long)bh * p.Capacity + slot] : slot;

    /// <summary>The first slot below <paramref name="kept"/> of head bh whose position is at
    /// least <paramref name="position"/> (binary search: positions increase).</summary>
    private static int SlotOf(ArrayView<int> positions, DecodeParams p, int bh, int kept,
        int position)
    {
        if (p.HasPositions == 0) return XMath.Clamp(position, 0, kept);
        int lo = 0, hi = kept;
        long at = (long)bh * p.Capacity;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (positions[at + mid] < position) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /// <summary>Row <paramref name="row"/> of (b, kvh) as a row index of the pool (times the dim
    /// gives its first element).</summary>
    private static long RowOffset(ArrayView<int> pageTable, DecodeParams p, int b, int kvh, int row)
    {
        int page = pageTable[b * p.MaxPagesPerSequence + row / p.PageSize];
        return ((long)page * p.KvHeads + kvh) * p.PageSize + (row - row / p.PageSize * p.PageSize);
    }

    /// <summary>Output element e = ((b, h, r), c): the parts combined as the host merge does.
    /// </summary>
    public static void MergeParts<TNorm>(ArrayView<float> partO, ArrayView<float> partM,
        ArrayView<float> partL, ArrayView<float> output, ArrayView<float> logSumExp,
        DecodeParams p, TNorm norm)
        where TNorm : struct, INormalizer
    {
        long e = Grid.GlobalIndex.X;
        int dv = p.ValueDim;
        long total = (long)p.Batch * p.Heads * p.Rows * dv;
        if (e >= total) return;
        int c = (int)(e % dv);
        long row = e / dv;
        int r = (int)(row % p.Rows), bh = (int)(row / p.Rows);
        int h = bh % p.Heads, b = bh / p.Heads;
        int kvh = h / p.Group, v = (h - kvh * p.Group) * p.Rows + r, qn = p.Vectors;
        long item0 = ((long)b * p.KvHeads + kvh) * p.Splits;
        float m = float.NegativeInfinity;
        for (int s = 0; s < p.Splits; s++) m = XMath.Max(m, partM[(item0 + s) * qn + v]);
        float l = 0f, o = 0f;
        if (m != float.NegativeInfinity)
            for (int s = 0; s < p.Splits; s++)
            {
                long at = (item0 + s) * qn + v;
                float w = TNorm.IsSoftmax ? XMath.Exp(partM[at] - m) : 1f;
                if (w == 0f) continue;
                l += partL[at] * w;
                o += partO[at * dv + c] * w;
            }
        output[e] = !TNorm.DividesBySum ? o : l == 0f ? 0f : o / l;
        if (c == 0 && p.HasLogSumExp != 0)
            logSumExp[row] = l == 0f ? float.NegativeInfinity
                : TNorm.IsSoftmax ? m + XMath.Log(l) : XMath.Log(l);
    }
}
