using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Layouts;
using Half = System.Half;

namespace Managed.Kernels.Decode;

// Eviction: which rows each head keeps, compaction, compensation rows, page release.
public sealed partial class KvCache<TStorage>
{
    /// <summary>
    /// Keeps, for each (sequence b, KV head h) in order b * KvHeads + h, the counts[bh] rows at
    /// the given slots (ascending, each below <see cref="Kept"/>; all heads' lists
    /// concatenated) and drops the others: the kept rows move to slots [0, count) in order
    /// with their positions; <see cref="Length"/> does not change. With
    /// <paramref name="compensate"/>, a head that drops rows folds them into its compensation
    /// row (RazorAttention): a new one, if it had none, takes the mean key and value of the
    /// dropped rows, the position of the first dropped row and the slot where that row would
    /// sit in the compacted order; an existing one (which must be retained) becomes the
    /// count-weighted mean (N k + sum of the dropped keys) / (N + n), likewise for values.
    /// Means are computed in fp32 and rounded once to the storage type. Decode adds ln N to
    /// that row's score. A paged cache gives back the pages no head of a sequence needs. On
    /// an ILGPU device rows move on the device (only counts, slots and the page table
    /// travel). A call that drops nothing changes nothing.
    /// </summary>
    /// <exception cref="ArgumentException">counts or slots has the wrong length, a count is
    /// negative or above the head's rows, a head's slots are not ascending or out of range,
    /// or a compensation row would be dropped; nothing is changed.</exception>
    /// <exception cref="ObjectDisposedException">The cache or its device is disposed.</exception>
    public void Retain(ReadOnlySpan<int> counts, ReadOnlySpan<int> slots, bool compensate = false)
    {
        ThrowIfDisposed();
        using var lease = Device.Use();
        ValidateRetain(counts, slots);
        bool drops = false;
        for (int i = 0; i < counts.Length; i++) drops |= counts[i] != _kept[i];
        if (!drops) return;
        var plan = Plan(counts, slots, compensate);
        bool first = _positions is null;
        if (first)
        {
            _positions = new int[Batch * KvHeads * Capacity];
            for (int i = 0; i < _positions.Length; i++) _positions[i] = i % Capacity;
        }
        if (Device.IsHost) MoveHost(plan);
        else MoveDevice(plan, first);
        var entries = CollectionsMarshal.AsSpan(plan.Entries);
        for (int i = 0; i < plan.Count; i++)
        {
            var e = entries.Slice(i * KvCacheKernels.EntryInts, KvCacheKernels.EntryInts);
            _positions![(long)e[0] * Capacity + e[1]] = e[5];
        }
        plan.Kept.CopyTo(_kept, 0);
        plan.CompensationSlot.CopyTo(_compensationSlot, 0);
        plan.CompensationCount.CopyTo(_compensationCount, 0);
        for (int i = 0; i < _compensationCount.Length; i++)
            _compensationLogCount[i] = _compensationCount[i] > 0
                ? (float)Math.Log(_compensationCount[i]) : 0f;
        if (IsPaged)
            for (int b = 0; b < Batch; b++)
                for (int page = PagesFor(MaxKept(b)); page < MaxPagesPerSequence; page++)
                {
                    ref int held = ref _pageTable[(long)b * MaxPagesPerSequence + page];
                    if (held < 0) continue;
                    _freePages.Push(held);
                    held = -1;
                }
        if (Device.IsHost) return;
        UploadState();
        Device.Ilgpu.Synchronize(); // the workspace slots are reused by the next call
    }

    private void ValidateRetain(ReadOnlySpan<int> counts, ReadOnlySpan<int> slots)
    {
        int heads = Batch * KvHeads;
        if (counts.Length != heads)
            throw new ArgumentException($"counts has {counts.Length} entries; expected batch "
                + $"{Batch} x kvHeads {KvHeads} = {heads}.", nameof(counts));
        long total = 0;
        for (int i = 0; i < heads; i++)
        {
            if ((uint)counts[i] > (uint)_kept[i])
                throw new ArgumentException($"counts[{i}] (sequence {i / KvHeads}, KV head "
                    + $"{i % KvHeads}) is {counts[i]}; expected 0 to its {_kept[i]} rows.",
                    nameof(counts));
            total += counts[i];
        }
        if (slots.Length != total)
            throw new ArgumentException(
                $"slots has {slots.Length} entries; expected the sum of counts, {total}.",
                nameof(slots));
        int at = 0;
        for (int i = 0; i < heads; i++)
        {
            int previous = -1, compensation = _compensationSlot[i];
            bool compensationKept = compensation < 0;
            for (int j = 0; j < counts[i]; j++, at++)
            {
                int s = slots[at];
                if (s <= previous || s >= _kept[i])
                    throw new ArgumentException($"slots[{at}] (sequence {i / KvHeads}, KV head "
                        + $"{i % KvHeads}) is {s}; expected ascending slots above {previous} "
                        + $"and below its {_kept[i]} rows.", nameof(slots));
                compensationKept |= s == compensation;
                previous = s;
            }
            if (!compensationKept)
                throw new ArgumentException($"Sequence {i / KvHeads}, KV head {i % KvHeads} "
                    + $"would drop its compensation row (slot {compensation}); it must be "
                    + "retained.", nameof(slots));
        }
        if (_positions is null && (long)heads * Capacity > Array.MaxLength)
            throw new ArgumentException($"Positions of batch {Batch} x kvHeads {KvHeads} x "
                + $"capacity {Capacity} rows exceed {Array.MaxLength} ints.", nameof(counts));
    }

    /// <summary>The moves of a validated retain, and the heads' state after it.</summary>
    private sealed class RetainPlan(int heads)
    {
        public readonly List<int> Entries = [], Sources = [];
        public readonly List<float> Weights = [];
        public readonly int[] Kept = new int[heads], CompensationSlot = new int[heads],
            CompensationCount = new int[heads];

        public int Count => Weights.Count;

        public void Add(int bh, int dst, int self, float weight, ReadOnlySpan<int> sources,
            int position)
        {
            Entries.AddRange([bh, dst, Sources.Count, sources.Length, self, position]);
            Weights.Add(weight);
            foreach (int s in sources) Sources.Add(s);
        }
    }

    private RetainPlan Plan(ReadOnlySpan<int> counts, ReadOnlySpan<int> slots, bool compensate)
    {
        var plan = new RetainPlan(counts.Length);
        int at = 0;
        for (int bh = 0; bh < counts.Length; bh++)
        {
            int n = _kept[bh], c = counts[bh], oldSlot = _compensationSlot[bh];
            var kept = slots.Slice(at, c);
            at += c;
            plan.Kept[bh] = n;
            plan.CompensationSlot[bh] = oldSlot;
            plan.CompensationCount[bh] = _compensationCount[bh];
            if (c == n) continue;
            var dropped = new int[n - c];
            for (int s = 0, j = 0, d = 0; s < n; s++)
                if (j < c && kept[j] == s) j++;
                else dropped[d++] = s;
            bool create = compensate && oldSlot < 0;
            int dst = 0, newSlot = -1;
            void Create(ref int dst)
            {
                plan.Add(bh, dst, -1, 0f, dropped, Position(bh, dropped[0]));
                newSlot = dst++;
            }
            foreach (int s in kept)
            {
                if (create && newSlot < 0 && s > dropped[0]) Create(ref dst);
                if (s == oldSlot)
                {
                    newSlot = dst;
                    if (compensate)
                        plan.Add(bh, dst, s, _compensationCount[bh], dropped, Position(bh, s));
                    else if (s != dst)
                        plan.Add(bh, dst, -1, 0f, [s], Position(bh, s));
                }
                else if (s != dst)
                    plan.Add(bh, dst, -1, 0f, [s], Position(bh, s));
                dst++;
            }
            if (create && newSlot < 0) Create(ref dst);
            plan.Kept[bh] = dst;
            plan.CompensationSlot[bh] = newSlot;
            if (compensate) plan.CompensationCount[bh] += dropped.Length;
        }
        return plan;
    }

    private int Position(int bh, int slot) =>
        _positions is null ? slot : _positions[(long)bh * Capacity + slot];

    private void MoveHost(RetainPlan plan)
    {
        int n = plan.Count, d = HeadDim, dv = ValueDim;
        var rowKeys = new TStorage[n * d];
        var rowValues = new TStorage[n * dv];
        var entries = CollectionsMarshal.AsSpan(plan.Entries);
        for (int i = 0; i < n; i++)
        {
            var e = entries.Slice(i * KvCacheKernels.EntryInts, KvCacheKernels.EntryInts);
            Combine(_hostKeys!, plan, e, plan.Weights[i], rowKeys.AsSpan(i * d, d), keys: true);
            Combine(_hostValues!, plan, e, plan.Weights[i], rowValues.AsSpan(i * dv, dv),
                keys: false);
        }
        for (int i = 0; i < n; i++)
        {
            int bh = entries[i * KvCacheKernels.EntryInts];
            int dst = entries[i * KvCacheKernels.EntryInts + 1];
            int b = bh / KvHeads, h = bh % KvHeads;
            rowKeys.AsSpan(i * d, d).CopyTo(_hostKeys.AsSpan((int)KeyOffset(b, h, dst), d));
            rowValues.AsSpan(i * dv, dv)
                .CopyTo(_hostValues.AsSpan((int)ValueOffset(b, h, dst), dv));
        }
    }

    /// <summary>As <see cref="KvCacheKernels"/>' Combine, with the same fp32 operations in
    /// the same order (so host and device agree bit for bit).</summary>
    private void Combine(TStorage[] data, RetainPlan plan, ReadOnlySpan<int> e, float w,
        Span<TStorage> row, bool keys)
    {
        int b = e[0] / KvHeads, h = e[0] % KvHeads, start = e[2], count = e[3], self = e[4];
        int dim = row.Length;
        int Offset(int slot) => (int)(keys ? KeyOffset(b, h, slot) : ValueOffset(b, h, slot));
        if (self < 0 && count == 1)
        {
            data.AsSpan(Offset(plan.Sources[start]), dim).CopyTo(row);
            return;
        }
        for (int c = 0; c < dim; c++)
        {
            float acc = self >= 0 ? w * Widen(data[Offset(self) + c]) : 0f;
            for (int j = 0; j < count; j++) acc += Widen(data[Offset(plan.Sources[start + j]) + c]);
            row[c] = Narrow(acc / (w + count));
        }
    }

    private void MoveDevice(RetainPlan plan, bool first)
    {
        var acc = Device.Ilgpu;
        var stream = acc.DefaultStream;
        if (first)
        {
            long total = (long)Batch * KvHeads * Capacity;
            if (_devicePositions!.Length < total)
            {
                var fresh = acc.Allocate1D<int>(total);
                _devicePositions.Dispose();
                _devicePositions = fresh;
            }
            KvCacheKernels.Fill(Device)(stream, Config(total), _devicePositions.View, Capacity);
        }
        int n = plan.Count;
        if (n == 0) return;
        var ws = Device.Workspace;
        var entries = ws.Get<int>(0, plan.Entries.Count);
        var weights = ws.Get<float>(1, n);
        var sources = ws.Get<int>(2, plan.Sources.Count);
        var rowKeys = ws.Get<TStorage>(3, (long)n * HeadDim);
        var rowValues = ws.Get<TStorage>(4, (long)n * ValueDim);
        entries.CopyFromCPU(CollectionsMarshal.AsSpan(plan.Entries));
        weights.CopyFromCPU(CollectionsMarshal.AsSpan(plan.Weights));
        sources.CopyFromCPU(CollectionsMarshal.AsSpan(plan.Sources));
        var p = new KvCacheParams(KvHeads, HeadDim, ValueDim, PageSize, MaxPagesPerSequence,
            Capacity, n);
        var config = Config((long)n * Math.Max(HeadDim, ValueDim));
        foreach (bool gather in new[] { true, false })
            MoveKernel(gather)(stream, config, entries, weights, sources, _keys!.View,
                _values!.View, _table!.View, _devicePositions!.View, rowKeys, rowValues, p);
    }

    /// <summary>Squared L2 norms of every held key in fp32, at [(b * KvHeads + h) * stride +
    /// slot] for slots below Kept (others undefined); stride = the most rows any head holds.
    /// On an ILGPU device a kernel computes them; only the norms travel.</summary>
    internal (float[] Norms, int Stride) KeySquaredNorms()
    {
        ThrowIfDisposed();
        using var lease = Device.Use();
        int heads = Batch * KvHeads, stride = Math.Max(1, _kept.Max());
        var norms = new float[(long)heads * stride];
        if (Device.IsHost)
        {
            for (int bh = 0; bh < heads; bh++)
                for (int j = 0; j < _kept[bh]; j++)
                {
                    long row = KeyOffset(bh / KvHeads, bh % KvHeads, j);
                    float sum = 0f;
                    for (int c = 0; c < HeadDim; c++)
                    {
                        float x = Widen(_hostKeys![row + c]);
                        sum += x * x;
                    }
                    norms[(long)bh * stride + j] = sum;
                }
            return (norms, stride);
        }
        var view = Device.Workspace.Get<float>(0, norms.Length);
        var p = new KvCacheParams(KvHeads, HeadDim, ValueDim, PageSize, MaxPagesPerSequence,
            Capacity, heads);
        NormKernel()(Device.Ilgpu.DefaultStream, Config(norms.LongLength), _keys!.View,
            _table!.View, _deviceKept!.View, view, p, stride);
        view.CopyToCPU(norms);
        Device.Ilgpu.Synchronize();
        return (norms, stride);
    }

    private static KernelConfig Config(long elements) =>
        new((int)Math.Clamp((elements + 127) / 128, 1, 65535L * 16), 128);

    private KvMoveLauncher<TStorage> MoveKernel(bool gather) =>
        typeof(TStorage) == typeof(float)
            ? (KvMoveLauncher<TStorage>)(object)KvCacheKernels.For<Float32Element, float>(
                Device, gather)
            : typeof(TStorage) == typeof(Half)
                ? (KvMoveLauncher<TStorage>)(object)KvCacheKernels.For<Float16Element, Half>(
                    Device, gather)
                : (KvMoveLauncher<TStorage>)(object)KvCacheKernels
                    .For<BFloat16Element, BFloat16>(Device, gather);

    private KvNormLauncher<TStorage> NormKernel() =>
        typeof(TStorage) == typeof(float)
            ? (KvNormLauncher<TStorage>)(object)KvCacheKernels.Norms<Float32Element, float>(Device)
            : typeof(TStorage) == typeof(Half)
                ? (KvNormLauncher<TStorage>)(object)KvCacheKernels.Norms<Float16Element, Half>(
                    Device)
                : (KvNormLauncher<TStorage>)(object)KvCacheKernels
                    .Norms<BFloat16Element, BFloat16>(Device);

    private static float Widen(TStorage x) =>
        typeof(TStorage) == typeof(float) ? Unsafe.As<TStorage, float>(ref x)
        : typeof(TStorage) == typeof(Half) ? (float)Unsafe.As<TStorage, Half>(ref x)
        : BFloat16.ToSingle(Unsafe.As<TStorage, BFloat16>(ref x));

    private static TStorage Narrow(float x)
    {
        if (typeof(TStorage) == typeof(float)) return Unsafe.As<float, TStorage>(ref x);
        if (typeof(TStorage) == typeof(Half))
        {
            var h = (Half)x;
            return Unsafe.As<Half, TStorage>(ref h);
        }
        var bf = BFloat16.FromSingle(x);
        return Unsafe.As<BFloat16, TStorage>(ref bf);
    }
}
