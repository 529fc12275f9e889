using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;

namespace Managed.Kernels.Decode;

/// <summary>
/// Keys and values of a batch of sequences, on one device, stored as
/// <typeparamref name="TStorage"/> (float, <see cref="System.Half"/> or <see cref="BFloat16"/>).
/// Paged (vLLM / FlashInfer "HND"): a pool of pages, each (kvHeads, pageSize, dim), and a page
/// table per sequence; row j of sequence b lies in page table[b][j / pageSize]. Contiguous:
/// (batch, kvHeads, capacity, dim), the paged layout with one page of capacity rows per
/// sequence, so both share every kernel and give bit-identical results on the same data.
/// Rows are appended per sequence (<see cref="Append(ReadOnlySpan{TStorage}, ReadOnlySpan{TStorage}, int, ReadOnlySpan{int})"/>);
/// a bad append throws before anything changes. Not thread-safe: one writer at a time.
/// <para>
/// Eviction (<see cref="Retain"/>, the policies of <c>Managed.Kernels.Decode.Policies</c>)
/// makes the heads of a sequence hold different rows: head h of sequence b keeps
/// <see cref="Kept"/>(b, h) rows in slots [0, Kept), in order of their original positions
/// (<see cref="Positions"/>), while <see cref="Length"/> stays the tokens seen. Masks and score
/// modifiers see original positions. A head may hold one compensation row standing for many
/// dropped tokens (RazorAttention), weighted by their count in the softmax.
/// </para>
/// </summary>
public sealed partial class KvCache<TStorage> : IDisposable where TStorage : unmanaged
{
    private readonly int[] _lengths;          // tokens seen per sequence
    private readonly int[] _kept;             // (batch, kvHeads): rows each head holds
    private readonly int[] _keptBefore;       // _kept at the start of a host append
    private int[]? _positions;                // (batch, kvHeads, capacity); null: slot = position
    private readonly int[] _compensationSlot; // (batch, kvHeads); -1: none
    private readonly int[] _compensationCount;
    private readonly float[] _compensationLogCount;
    private readonly int[] _pageTable;        // (batch, maxPagesPerSequence), -1: none
    private readonly Stack<int> _freePages;
    private readonly TStorage[]? _hostKeys, _hostValues;
    private readonly MemoryBuffer1D<TStorage, Stride1D.Dense>? _keys, _values;
    private readonly MemoryBuffer1D<int, Stride1D.Dense>? _table, _deviceLengths, _counts;
    private readonly MemoryBuffer1D<int, Stride1D.Dense>? _deviceKept, _deviceCompensationSlot;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>? _deviceCompensationLogCount;
    private MemoryBuffer1D<int, Stride1D.Dense>? _devicePositions; // 1 int until an eviction
    private bool _disposed;

    private KvCache(ComputeDevice device, int batch, int kvHeads, int pageSize, int pages,
        int maxPagesPerSequence, int headDim, int valueDim, bool paged)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (typeof(TStorage) != typeof(float) && typeof(TStorage) != typeof(System.Half)
            && typeof(TStorage) != typeof(BFloat16))
            throw new ArgumentException(
                $"A cache stores float, Half or BFloat16, not {typeof(TStorage).Name}.");
        Positive(batch, nameof(batch));
        Positive(kvHeads, nameof(kvHeads));
        Positive(pageSize, paged ? nameof(pageSize) : "capacity");
        Positive(pages, nameof(pages));
        Positive(maxPagesPerSequence, nameof(maxPagesPerSequence));
        Positive(headDim, nameof(headDim));
        Positive(valueDim, nameof(valueDim));
        if ((long)pageSize * maxPagesPerSequence > int.MaxValue)
            throw new ArgumentException(
                $"pageSize {pageSize} x maxPagesPerSequence {maxPagesPerSequence} exceeds "
                + "int.MaxValue rows.", nameof(maxPagesPerSequence));
        (Device, Batch, KvHeads, PageSize, PageCount, MaxPagesPerSequence, HeadDim, ValueDim,
            IsPaged) = (device, batch, kvHeads, pageSize, pages, maxPagesPerSequence, headDim,
            valueDim, paged);
        _lengths = new int[batch];
        _kept = new int[batch * kvHeads];
        _keptBefore = new int[batch * kvHeads];
        _compensationSlot = new int[batch * kvHeads];
        _compensationCount = new int[batch * kvHeads];
        _compensationLogCount = new float[batch * kvHeads];
        _pageTable = new int[(long)batch * maxPagesPerSequence];
        _freePages = new Stack<int>();
        Reset();
        long keyElements = (long)pages * kvHeads * pageSize * headDim;
        long valueElements = (long)pages * kvHeads * pageSize * valueDim;
        using var lease = device.Use();
        if (device.IsHost)
        {
            if (keyElements > Array.MaxLength || valueElements > Array.MaxLength)
                throw new ArgumentException(
                    $"A host cache holds at most {Array.MaxLength} elements per tensor; this one "
                    + $"needs {Math.Max(keyElements, valueElements)}.");
            _hostKeys = GC.AllocateArray<TStorage>((int)keyElements, pinned: true);
            _hostValues = GC.AllocateArray<TStorage>((int)valueElements, pinned: true);
            return;
        }
        var acc = device.Ilgpu;
        try
        {
            _keys = acc.Allocate1D<TStorage>(keyElements);
            _values = acc.Allocate1D<TStorage>(valueElements);
            _table = acc.Allocate1D<int>(_pageTable.Length);
            _deviceLengths = acc.Allocate1D<int>(batch);
            _counts = acc.Allocate1D<int>(batch);
            _deviceKept = acc.Allocate1D<int>(batch * kvHeads);
            _deviceCompensationSlot = acc.Allocate1D<int>(batch * kvHeads);
            _deviceCompensationLogCount = acc.Allocate1D<float>(batch * kvHeads);
            _devicePositions = acc.Allocate1D<int>(1);
            _keys.MemSetToZero();
            _values.MemSetToZero();
            UploadState();
        }
        catch
        {
            FreeDevice();
            throw;
        }
    }

    /// <summary>A contiguous cache: (batch, kvHeads, capacity, headDim) keys and
    /// (batch, kvHeads, capacity, valueDim) values, empty.</summary>
    /// <exception cref="ArgumentException">A size is not positive, or too large.</exception>
    public static KvCache<TStorage> Contiguous(ComputeDevice device, int batch, int kvHeads,
        int capacity, int headDim, int valueDim) =>
        new(device, batch, kvHeads, capacity, batch, 1, headDim, valueDim, paged: false);

    /// <summary>A paged cache: <paramref name="pages"/> pages of (kvHeads, pageSize, dim) shared
    /// by the sequences, at most <paramref name="maxPagesPerSequence"/> each; empty.</summary>
    /// <exception cref="ArgumentException">A size is not positive, or too large.</exception>
    public static KvCache<TStorage> Paged(ComputeDevice device, int batch, int kvHeads,
        int pageSize, int pages, int maxPagesPerSequence, int headDim, int valueDim) =>
        new(device, batch, kvHeads, pageSize, pages, maxPagesPerSequence, headDim, valueDim,
            paged: true);

    /// <summary>The device holding the cache.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Sequences.</summary>
    public int Batch { get; }

    /// <summary>KV heads.</summary>
    public int KvHeads { get; }

    /// <summary>Dims of a key.</summary>
    public int HeadDim { get; }

    /// <summary>Dims of a value.</summary>
    public int ValueDim { get; }

    /// <summary>Rows per page (the capacity for a contiguous cache).</summary>
    public int PageSize { get; }

    /// <summary>Pages in the pool (batch for a contiguous cache).</summary>
    public int PageCount { get; }

    /// <summary>Most pages one sequence may hold (1 for a contiguous cache).</summary>
    public int MaxPagesPerSequence { get; }

    /// <summary>Whether the cache is paged.</summary>
    public bool IsPaged { get; }

    /// <summary>Most rows one sequence may hold.</summary>
    public int Capacity => PageSize * MaxPagesPerSequence;

    /// <summary>Pages not held by any sequence.</summary>
    public int FreePages => _freePages.Count;

    /// <summary>Whether the cache is disposed.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>Tokens seen by sequence <paramref name="sequence"/> (appended rows, evicted or
    /// not): decode's query rows sit at positions Length - queryRows + r.</summary>
    public int Length(int sequence)
    {
        ThrowIfDisposed();
        return _lengths[sequence];
    }

    /// <summary>Rows that KV head <paramref name="kvHead"/> of <paramref name="sequence"/>
    /// holds (its slots [0, Kept)); Length unless rows were evicted.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is out of range.</exception>
    public int Kept(int sequence, int kvHead)
    {
        ThrowIfDisposed();
        return _kept[HeadIndex(sequence, kvHead)];
    }

    /// <summary>The original positions of the rows head <paramref name="kvHead"/> of
    /// <paramref name="sequence"/> holds, slot by slot (a copy of Kept entries, increasing);
    /// 0, 1, 2, ... until an eviction.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is out of range.</exception>
    public int[] Positions(int sequence, int kvHead)
    {
        ThrowIfDisposed();
        int bh = HeadIndex(sequence, kvHead);
        return _positions is null ? Enumerable.Range(0, _kept[bh]).ToArray()
            : _positions.AsSpan((int)((long)bh * Capacity), _kept[bh]).ToArray();
    }

    /// <summary>The slot of head <paramref name="kvHead"/>'s compensation row (-1: none) and
    /// the number of dropped tokens it stands for (0: none).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is out of range.</exception>
    public (int Slot, int Count) Compensation(int sequence, int kvHead)
    {
        ThrowIfDisposed();
        int bh = HeadIndex(sequence, kvHead);
        return (_compensationSlot[bh], _compensationCount[bh]);
    }

    /// <summary>The tokens seen by every sequence (a copy).</summary>
    public int[] Lengths()
    {
        ThrowIfDisposed();
        return (int[])_lengths.Clone();
    }

    /// <summary>Empties every sequence (paged: gives their pages back) and forgets every
    /// eviction (positions, compensation rows).</summary>
    public void Clear()
    {
        ThrowIfDisposed();
        using var lease = Device.Use();
        Reset();
        if (!Device.IsHost) UploadState();
    }

    /// <summary>
    /// Appends counts[b] rows to each sequence b, from host keys (batch, kvHeads, rows,
    /// headDim) and values (batch, kvHeads, rows, valueDim), of which each sequence takes its
    /// first counts[b] rows. On an ILGPU device the rows are uploaded, then placed by a kernel.
    /// </summary>
    /// <exception cref="ArgumentException">A length or count is wrong, a sequence would exceed
    /// its capacity, or the pool has too few free pages; nothing is changed.</exception>
    /// <exception cref="ObjectDisposedException">The cache or its device is disposed.</exception>
    public void Append(ReadOnlySpan<TStorage> keys, ReadOnlySpan<TStorage> values, int rows,
        ReadOnlySpan<int> counts)
    {
        ThrowIfDisposed();
        using var lease = Device.Use();
        ValidateAppend(keys.Length, values.Length, rows, counts);
        if (!Device.IsHost)
        {
            var ws = Device.Workspace;
            var k = ws.Get<TStorage>(0, keys.Length);
            var v = ws.Get<TStorage>(1, values.Length);
            k.CopyFromCPU(keys);
            v.CopyFromCPU(values);
            AppendOnDevice(k, v, rows, counts);
            Device.Ilgpu.Synchronize(); // the workspace slots are reused by the next call
            return;
        }
        var old = _keptBefore;
        _kept.CopyTo(old, 0);
        Grow(counts);
        for (int b = 0; b < Batch; b++)
            for (int h = 0; h < KvHeads; h++)
                for (int i = 0; i < counts[b]; i++)
                {
                    long from = (((long)b * KvHeads + h) * rows + i);
                    int row = old[b * KvHeads + h] + i; // each head appends at its own slot
                    keys.Slice((int)(from * HeadDim), HeadDim)
                        .CopyTo(_hostKeys.AsSpan((int)KeyOffset(b, h, row), HeadDim));
                    values.Slice((int)(from * ValueDim), ValueDim)
                        .CopyTo(_hostValues.AsSpan((int)ValueOffset(b, h, row), ValueDim));
                }
    }

    /// <summary>As the span overload, from keys and values already on this cache's device:
    /// no host round trip (only the counts and the page table travel).</summary>
    /// <exception cref="ArgumentException">As the span overload, or a view is memory of
    /// another accelerator, or the cache is on the host.</exception>
    /// <exception cref="ObjectDisposedException">The cache or its device is disposed.</exception>
    public void Append(ArrayView<TStorage> keys, ArrayView<TStorage> values, int rows,
        ReadOnlySpan<int> counts)
    {
        ThrowIfDisposed();
        using var lease = Device.Use();
        if (Device.IsHost)
            throw new ArgumentException("A host cache takes spans.", nameof(keys));
        Device.CheckOwns(keys, nameof(keys));
        Device.CheckOwns(values, nameof(values));
        ValidateAppend(keys.Length, values.Length, rows, counts);
        AppendOnDevice(keys, values, rows, counts);
    }

    private void AppendOnDevice(ArrayView<TStorage> keys, ArrayView<TStorage> values, int rows,
        ReadOnlySpan<int> counts)
    {
        // Old kept counts and lengths are on the device; the counts go up, the kernel places
        // the rows (and their positions), then the new kept counts and lengths.
        var accelerator = Device.Accelerator!;
        StagedUpload.Copy(accelerator, counts, _counts!.View.AsContiguous());
        int maxCount = 0;
        foreach (int c in counts) maxCount = Math.Max(maxCount, c);
        // The page table travels only when this append took pages (clear and retain upload
        // it themselves): a decode step of a model appends once per layer.
        if (Grow(counts)) StagedUpload.Copy(accelerator, _pageTable, _table!.View);
        if (maxCount > 0)
        {
            var p = new CacheAppendParams(Batch, KvHeads, rows, HeadDim, ValueDim, PageSize,
                MaxPagesPerSequence, Capacity, HasPositions ? 1 : 0);
            long elements = (long)Batch * KvHeads * maxCount * Math.Max(HeadDim, ValueDim);
            var kernel = CacheAppendKernel.For<TStorage>(Device);
            int groups = (int)Math.Min((elements + 127) / 128, 65535L * 16);
            kernel(Device.Ilgpu.DefaultStream, new KernelConfig(groups, 128), keys, values,
                _keys!.View, _values!.View, _table!.View, _deviceKept!.View, _deviceLengths!.View,
                _devicePositions!.View, _counts.View, p, maxCount);
        }
        StagedUpload.Copy(accelerator, _kept, _deviceKept!.View);
        StagedUpload.Copy(accelerator, _lengths, _deviceLengths!.View);
    }

    private void ValidateAppend(long keyLength, long valueLength, int rows, ReadOnlySpan<int> counts)
    {
        if (rows <= 0)
            throw new ArgumentException($"rows must be positive, got {rows}.", nameof(rows));
        if (counts.Length != Batch)
            throw new ArgumentException(
                $"counts has {counts.Length} entries; expected batch {Batch}.", nameof(counts));
        long expectK = (long)Batch * KvHeads * rows * HeadDim;
        long expectV = (long)Batch * KvHeads * rows * ValueDim;
        if (keyLength != expectK)
            throw new ArgumentException($"keys has {keyLength} elements; expected {expectK} = "
                + $"batch {Batch} x kvHeads {KvHeads} x rows {rows} x headDim {HeadDim}.", "keys");
        if (valueLength != expectV)
            throw new ArgumentException($"values has {valueLength} elements; expected {expectV} "
                + $"= batch {Batch} x kvHeads {KvHeads} x rows {rows} x valueDim {ValueDim}.",
                "values");
        int pagesNeeded = 0;
        for (int b = 0; b < Batch; b++)
        {
            if ((uint)counts[b] > (uint)rows)
                throw new ArgumentException(
                    $"counts[{b}] is {counts[b]}; expected 0 to rows {rows}.", nameof(counts));
            long length = (long)MaxKept(b) + counts[b];
            if (length > Capacity)
                throw new ArgumentException(
                    $"Sequence {b} would hold {length} rows; its capacity is {Capacity}.",
                    nameof(counts));
            if ((long)_lengths[b] + counts[b] > int.MaxValue)
                throw new ArgumentException(
                    $"Sequence {b} would have seen more than int.MaxValue tokens.", nameof(counts));
            pagesNeeded += PagesFor((int)length) - PagesFor(MaxKept(b));
        }
        if (IsPaged && pagesNeeded > _freePages.Count)
            throw new ArgumentException(
                $"The append needs {pagesNeeded} new pages; the pool has {_freePages.Count} "
                + $"free of {PageCount}.", nameof(counts));
    }

    // Lengths, kept rows, positions and pages after a validated append: a sequence's pages
    // cover its longest head.
    // Places counts[b] more rows per sequence; true when a page was taken from the pool.
    private bool Grow(ReadOnlySpan<int> counts)
    {
        bool took = false;
        for (int b = 0; b < Batch; b++)
        {
            int before = MaxKept(b), after = before + counts[b];
            if (IsPaged)
                for (int page = PagesFor(before); page < PagesFor(after); page++)
                {
                    _pageTable[(long)b * MaxPagesPerSequence + page] = _freePages.Pop();
                    took = true;
                }
            for (int h = 0; h < KvHeads; h++)
            {
                int bh = b * KvHeads + h;
                if (_positions is not null)
                    for (int i = 0; i < counts[b]; i++)
                        _positions[(long)bh * Capacity + _kept[bh] + i] = _lengths[b] + i;
                _kept[bh] += counts[b];
            }
            _lengths[b] += counts[b];
        }
        return took;
    }

    private int PagesFor(int length) => (length + PageSize - 1) / PageSize;

    /// <summary>The most rows any head of sequence <paramref name="b"/> holds.</summary>
    internal int MaxKept(int b)
    {
        int most = 0;
        for (int h = 0; h < KvHeads; h++) most = Math.Max(most, _kept[b * KvHeads + h]);
        return most;
    }

    private int HeadIndex(int sequence, int kvHead)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(sequence, Batch);
        ArgumentOutOfRangeException.ThrowIfNegative(kvHead);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(kvHead, KvHeads);
        return sequence * KvHeads + kvHead;
    }

    private void Reset()
    {
        Array.Clear(_lengths);
        Array.Clear(_kept);
        _positions = null;
        Array.Fill(_compensationSlot, -1);
        Array.Clear(_compensationCount);
        Array.Clear(_compensationLogCount);
        _freePages.Clear();
        if (IsPaged)
        {
            Array.Fill(_pageTable, -1);
            for (int page = PageCount - 1; page >= 0; page--) _freePages.Push(page);
        }
        else
            for (int b = 0; b < Batch; b++) _pageTable[b] = b;
    }

    // Everything but K, V and positions (those are written on the device).
    private void UploadState()
    {
        _table!.View.CopyFromCPU(_pageTable);
        _deviceLengths!.View.CopyFromCPU(_lengths);
        _deviceKept!.View.CopyFromCPU(_kept);
        _deviceCompensationSlot!.View.CopyFromCPU(_compensationSlot);
        _deviceCompensationLogCount!.View.CopyFromCPU(_compensationLogCount);
    }

    /// <summary>Element offset of row <paramref name="row"/> of (b, h) in the keys.</summary>
    internal long KeyOffset(int b, int h, int row) =>
        (((long)_pageTable[(long)b * MaxPagesPerSequence + row / PageSize] * KvHeads + h)
            * PageSize + row % PageSize) * HeadDim;

    /// <summary>Element offset of row <paramref name="row"/> of (b, h) in the values.</summary>
    internal long ValueOffset(int b, int h, int row) =>
        (((long)_pageTable[(long)b * MaxPagesPerSequence + row / PageSize] * KvHeads + h)
            * PageSize + row % PageSize) * ValueDim;

    /// <summary>Tokens seen per sequence (batch).</summary>
    internal int[] HostLengths => _lengths;

    /// <summary>Rows held per (sequence, KV head), index b * KvHeads + h.</summary>
    internal int[] HostKept => _kept;

    /// <summary>Original position of slot j of (b, h) at (b * KvHeads + h) * Capacity + j;
    /// null until the first eviction (position = slot).</summary>
    internal int[]? HostPositions => _positions;

    /// <summary>Whether positions are materialized (an eviction happened since the last
    /// Clear).</summary>
    internal bool HasPositions => _positions is not null;

    /// <summary>Compensation slot per (sequence, KV head); -1: none.</summary>
    internal int[] HostCompensationSlot => _compensationSlot;

    /// <summary>ln(tokens the compensation row stands for) per (sequence, KV head), added to
    /// that slot's score (after the score modifier, before the normalizer); 0 where none.
    /// </summary>
    internal float[] HostCompensationLogCount => _compensationLogCount;
    internal int[] HostPageTable => _pageTable;
    internal TStorage[] HostKeys => _hostKeys!;
    internal TStorage[] HostValues => _hostValues!;
    internal ArrayView<TStorage> DeviceKeys => _keys!.View;
    internal ArrayView<TStorage> DeviceValues => _values!.View;
    internal ArrayView<int> DevicePageTable => _table!.View;
    internal ArrayView<int> DeviceLengths => _deviceLengths!.View;

    /// <summary>Device mirror of <see cref="HostKept"/>.</summary>
    internal ArrayView<int> DeviceKept => _deviceKept!.View;

    /// <summary>Device mirror of <see cref="HostPositions"/>, same layout; at least one
    /// element; meaningful only when <see cref="HasPositions"/>.</summary>
    internal ArrayView<int> DevicePositions => _devicePositions!.View;

    /// <summary>Device mirror of <see cref="HostCompensationSlot"/>.</summary>
    internal ArrayView<int> DeviceCompensationSlot => _deviceCompensationSlot!.View;

    /// <summary>Device mirror of <see cref="HostCompensationLogCount"/>.</summary>
    internal ArrayView<float> DeviceCompensationLogCount => _deviceCompensationLogCount!.View;

    internal void ThrowIfDisposed()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ObjectDisposedException.ThrowIf(Device.IsDisposed, Device);
    }

    /// <summary>Frees the cache's device memory. Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (Device.IsDisposed) return; // the device freed its memory with it
        using var lease = Device.Use();
        FreeDevice();
    }

    private void FreeDevice()
    {
        _keys?.Dispose();
        _values?.Dispose();
        _table?.Dispose();
        _deviceLengths?.Dispose();
        _counts?.Dispose();
        _deviceKept?.Dispose();
        _deviceCompensationSlot?.Dispose();
        _deviceCompensationLogCount?.Dispose();
        _devicePositions?.Dispose();
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0)
            throw new ArgumentException($"{name} must be positive, got {value}.", name);
    }
}
