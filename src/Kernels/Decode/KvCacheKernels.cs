using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;

namespace Managed.Kernels.Decode;

/// <summary>Sizes of one eviction or norm pass over a cache, passed by value.</summary>
internal readonly record struct KvCacheParams(int KvHeads, int HeadDim, int ValueDim,
    int PageSize, int MaxPagesPerSequence, int Capacity, int Entries);

/// <summary>A loaded gather or scatter kernel of <see cref="KvCacheKernels"/>.</summary>
internal delegate void KvMoveLauncher<TStorage>(AcceleratorStream stream, KernelConfig config,
    ArrayView<int> entries, ArrayView<float> weights, ArrayView<int> sources,
    ArrayView<TStorage> keys, ArrayView<TStorage> values, ArrayView<int> pageTable,
    ArrayView<int> positions, ArrayView<TStorage> rowKeys, ArrayView<TStorage> rowValues,
    KvCacheParams p)
    where TStorage : unmanaged;

/// <summary>A loaded position-fill kernel.</summary>
internal delegate void KvFillLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<int> positions, int capacity);

/// <summary>A loaded key-norm kernel.</summary>
internal delegate void KvNormLauncher<TStorage>(AcceleratorStream stream, KernelConfig config,
    ArrayView<TStorage> keys, ArrayView<int> pageTable, ArrayView<int> kept,
    ArrayView<float> norms, KvCacheParams p, int stride)
    where TStorage : unmanaged;

/// <summary>
/// The device side of <see cref="KvCache{TStorage}.Retain"/> and of key-norm policies. An
/// eviction is a list of entries of <see cref="EntryInts"/> ints (head b * kvHeads + h,
/// destination slot, first source, source count, self slot or -1, position): the destination
/// row becomes (w * row[self] + sum of row[sources]) / (w + count), in fp32 and rounded once,
/// or a bit copy for a plain move (no self, one source). <see cref="Gather"/> computes every
/// entry's rows into scratch before <see cref="Scatter"/> writes any, so sources may be
/// overwritten destinations.
/// </summary>
internal static class KvCacheKernels
{
    /// <summary>Ints per entry.</summary>
    public const int EntryInts = 6;

    public static KvMoveLauncher<TStorage> For<TElement, TStorage>(ComputeDevice device,
        bool gather)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged =>
        device.Kernels.Get<KvMoveLauncher<TStorage>>(typeof(KvCacheKernels)
            .GetMethod(gather ? nameof(Gather) : nameof(Scatter))!
            .MakeGenericMethod(typeof(TElement), typeof(TStorage)));

    public static KvFillLauncher Fill(ComputeDevice device) =>
        device.Kernels.Get<KvFillLauncher>(typeof(KvCacheKernels).GetMethod(nameof(FillSlots))!);

    public static KvNormLauncher<TStorage> Norms<TElement, TStorage>(ComputeDevice device)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged =>
        device.Kernels.Get<KvNormLauncher<TStorage>>(typeof(KvCacheKernels)
            .GetMethod(nameof(KeyNorms))!.MakeGenericMethod(typeof(TElement), typeof(TStorage)));

    /// <summary>Element c of entry i's key and value rows into rowKeys (entries, headDim) and
    /// rowValues (entries, valueDim).</summary>
    public static void Gather<TElement, TStorage>(ArrayView<int> entries,
        ArrayView<float> weights, ArrayView<int> sources, ArrayView<TStorage> keys,
        ArrayView<TStorage> values, ArrayView<int> pageTable, ArrayView<int> positions,
        ArrayView<TStorage> rowKeys, ArrayView<TStorage> rowValues, KvCacheParams p)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        int dim = p.HeadDim > p.ValueDim ? p.HeadDim : p.ValueDim;
        long total = (long)p.Entries * dim, stride = (long)Grid.DimX * Group.DimX;
        for (long e = Grid.GlobalIndex.X; e < total; e += stride)
        {
            int c = (int)(e % dim), i = (int)(e / dim);
            if (c < p.HeadDim)
                rowKeys[(long)i * p.HeadDim + c] = Combine<TElement, TStorage>(keys, pageTable,
                    entries, weights, sources, p, i, p.HeadDim, c);
            if (c < p.ValueDim)
                rowValues[(long)i * p.ValueDim + c] = Combine<TElement, TStorage>(values,
                    pageTable, entries, weights, sources, p, i, p.ValueDim, c);
        }
    }

    /// <summary>Entry i's gathered rows into its destination slot; its position too.</summary>
    public static void Scatter<TElement, TStorage>(ArrayView<int> entries,
        ArrayView<float> weights, ArrayView<int> sources, ArrayView<TStorage> keys,
        ArrayView<TStorage> values, ArrayView<int> pageTable, ArrayView<int> positions,
        ArrayView<TStorage> rowKeys, ArrayView<TStorage> rowValues, KvCacheParams p)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        int dim = p.HeadDim > p.ValueDim ? p.HeadDim : p.ValueDim;
        long total = (long)p.Entries * dim, stride = (long)Grid.DimX * Group.DimX;
        for (long e = Grid.GlobalIndex.X; e < total; e += stride)
        {
            int c = (int)(e % dim), i = (int)(e / dim);
            int bh = entries[i * EntryInts], dst = entries[i * EntryInts + 1];
            long row = Row(pageTable, p, bh, dst);
            if (c < p.HeadDim) keys[row * p.HeadDim + c] = rowKeys[(long)i * p.HeadDim + c];
            if (c < p.ValueDim)
                values[row * p.ValueDim + c] = rowValues[(long)i * p.ValueDim + c];
            if (c == 0) positions[(long)bh * p.Capacity + dst] = entries[i * EntryInts + 5];
        }
    }

    /// <summary>positions[e] = e mod capacity: every slot at its own position.</summary>
    public static void FillSlots(ArrayView<int> positions, int capacity)
    {
        long stride = (long)Grid.DimX * Group.DimX;
        for (long e = Grid.GlobalIndex.X; e < positions.Length; e += stride)
            positions[e] = (int)(e % capacity);
    }

    /// <summary>norms[bh * stride + j] = |k_j|^2 of slot j &lt; kept[bh] of head bh, in fp32
    /// (summed in dim order).</summary>
    public static void KeyNorms<TElement, TStorage>(ArrayView<TStorage> keys,
        ArrayView<int> pageTable, ArrayView<int> kept, ArrayView<float> norms, KvCacheParams p,
        int stride)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        long total = (long)p.Entries * stride, step = (long)Grid.DimX * Group.DimX;
        for (long e = Grid.GlobalIndex.X; e < total; e += step)
        {
            int bh = (int)(e / stride), j = (int)(e % stride);
            if (j >= kept[bh]) continue;
            long row = Row(pageTable, p, bh, j) * p.HeadDim;
            float sum = 0f;
            for (int c = 0; c < p.HeadDim; c++)
            {
                float x = TElement.ToSingle(keys[row + c]);
                sum += x * x;
            }
            norms[e] = sum;
        }
    }

    private static TStorage Combine<TElement, TStorage>(ArrayView<TStorage> data,
        ArrayView<int> pageTable, ArrayView<int> entries, ArrayView<float> weights,
        ArrayView<int> sources, KvCacheParams p, int i, int dim, int c)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        int bh = entries[i * EntryInts], start = entries[i * EntryInts + 2];
        int count = entries[i * EntryInts + 3], self = entries[i * EntryInts + 4];
        if (self < 0 && count == 1) return data[Row(pageTable, p, bh, sources[start]) * dim + c];
        float w = weights[i];
        float acc = self >= 0 ? w * TElement.ToSingle(data[Row(pageTable, p, bh, self) * dim + c])
            : 0f;
        for (int j = 0; j < count; j++)
            acc += TElement.ToSingle(data[Row(pageTable, p, bh, sources[start + j]) * dim + c]);
        return TElement.FromSingle(acc / (w + count));
    }

    /// <summary>Pool row of slot <paramref name="slot"/> of head bh = b * kvHeads + h.</summary>
    private static long Row(ArrayView<int> pageTable, KvCacheParams p, int bh, int slot)
    {
        int b = bh / p.KvHeads, h = bh - b * p.KvHeads;
        int page = pageTable[b * p.MaxPagesPerSequence + slot / p.PageSize];
        return ((long)page * p.KvHeads + h) * p.PageSize + (slot - slot / p.PageSize * p.PageSize);
    }
}
