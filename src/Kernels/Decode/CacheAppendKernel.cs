using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.Decode;

/// <summary>Sizes of one append, passed by value.</summary>
internal readonly record struct CacheAppendParams(int Batch, int KvHeads, int Rows, int HeadDim,
    int ValueDim, int PageSize, int MaxPagesPerSequence, int Capacity, int HasPositions);

/// <summary>A loaded append kernel.</summary>
internal delegate void CacheAppendLauncher<TStorage>(AcceleratorStream stream,
    KernelConfig config, ArrayView<TStorage> keys, ArrayView<TStorage> values,
    ArrayView<TStorage> cacheKeys, ArrayView<TStorage> cacheValues, ArrayView<int> pageTable,
    ArrayView<int> kept, ArrayView<int> lengths, ArrayView<int> positions, ArrayView<int> counts,
    CacheAppendParams p, int maxCount)
    where TStorage : unmanaged;

/// <summary>
/// Places appended rows into a cache on the device: thread e (grid-stride) copies element c of
/// row i of (b, h) to slot kept[b * kvHeads + h] + i of the cache (each head appends after its
/// own rows), through the page table; rows past counts[b] are skipped. With positions
/// (after an eviction) element 0's thread also records the row's position lengths[b] + i.
/// kept and lengths are those before the append.
/// </summary>
internal static class CacheAppendKernel
{
    public static CacheAppendLauncher<TStorage> For<TStorage>(ComputeDevice device)
        where TStorage : unmanaged =>
        device.Kernels.Get<CacheAppendLauncher<TStorage>>(
            typeof(CacheAppendKernel).GetMethod(nameof(Append))!.MakeGenericMethod(typeof(TStorage)));

    public static void Append<TStorage>(ArrayView<TStorage> keys, ArrayView<TStorage> values,
        ArrayView<TStorage> cacheKeys, ArrayView<TStorage> cacheValues, ArrayView<int> pageTable,
        ArrayView<int> kept, ArrayView<int> lengths, ArrayView<int> positions,
        ArrayView<int> counts, CacheAppendParams p, int maxCount)
        where TStorage : unmanaged
    {
        int dim = XMax(p.HeadDim, p.ValueDim);
        long total = (long)p.Batch * p.KvHeads * maxCount * dim;
        long stride = (long)Grid.DimX * Group.DimX;
        for (long e = Grid.GlobalIndex.X; e < total; e += stride)
        {
            int c = (int)(e % dim);
            long rest = e / dim;
            int i = (int)(rest % maxCount);
            rest /= maxCount;
            int h = (int)(rest % p.KvHeads), b = (int)(rest / p.KvHeads);
            if (i >= counts[b]) continue;
            int bh = b * p.KvHeads + h, row = kept[bh] + i;
            if (c == 0 && p.HasPositions != 0)
                positions[(long)bh * p.Capacity + row] = lengths[b] + i;
            long page = pageTable[(long)b * p.MaxPagesPerSequence + row / p.PageSize];
            long slot = (page * p.KvHeads + h) * p.PageSize + row % p.PageSize;
            long src = ((long)b * p.KvHeads + h) * p.Rows + i;
            if (c < p.HeadDim) cacheKeys[slot * p.HeadDim + c] = keys[src * p.HeadDim + c];
            if (c < p.ValueDim) cacheValues[slot * p.ValueDim + c] = values[src * p.ValueDim + c];
        }
    }

    private static int XMax(int a, int b) => a > b ? a : b;
}
