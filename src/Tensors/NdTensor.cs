using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using System.Numerics.Tensors;

namespace Managed.Tensors;

/// <summary>
/// A tensor of <see cref="float"/> (<see cref="DataType.Float32"/>) with a
/// <see cref="TensorShape"/> over exactly one storage. A tensor from <see cref="Allocate(int[])"/>
/// owns 64-byte aligned host memory and frees it on <see cref="Dispose"/> (or, if Dispose is
/// forgotten, when the storage is finalized). A tensor from <see cref="FromArray"/> or
/// <see cref="FromMemory"/> wraps the caller's memory without a copy and never frees it.
/// Views (<see cref="Slice(int)"/>, <see cref="Slice(int, int)"/>, <see cref="Reshape"/>) share
/// the storage; once the owner is disposed, every member of every view throws
/// <see cref="ObjectDisposedException"/>. Spans and tensor spans are raw views: do not use one
/// after its tensor is disposed, and keep the owning tensor reachable while you use them.
/// </summary>
public sealed class NdTensor : IDisposable
{
    private readonly TensorStorage _storage;
    private readonly long _offset;     // elements from the start of the storage
    private readonly bool _ownsStorage;
    private int _disposed;

    private NdTensor(TensorStorage storage, TensorShape shape, long offset, bool ownsStorage)
    {
        _storage = storage;
        Shape = shape;
        _offset = offset;
        _ownsStorage = ownsStorage;
    }

    /// <summary>Dims and strides.</summary>
    public TensorShape Shape { get; }

    /// <summary>Shape.Rank</summary>
    public int Rank => Shape.Rank;

    /// <summary>Shape.ElementCount</summary>
    public long ElementCount => Shape.ElementCount;

    /// <summary>Element type; <see cref="DataType.Float32"/> for every tensor today.</summary>
    public DataType DataType => _storage.DataType;

    /// <summary>True when the elements are in host memory.</summary>
    public bool IsHost => _storage is HostStorage;

    /// <summary>The ILGPU device holding the elements, or null for a host tensor.</summary>
    public ComputeDevice? Device => (_storage as DeviceStorage)?.Device;

    /// <summary>True for a view made by Slice or Reshape; its Dispose frees nothing.</summary>
    public bool IsView => !_ownsStorage;

    /// <summary>True when this tensor allocated its memory and frees it on Dispose (false for
    /// views and for wrapped user memory).</summary>
    public bool OwnsMemory => _ownsStorage && _storage.OwnsMemory;

    /// <summary>True after Dispose of this tensor or of the tensor that owns its storage.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0 || _storage.IsDisposed
        || _storage is DeviceStorage { Device.IsDisposed: true };

    /// <summary>Offset of element 0 in its storage, in elements (for tests and backends).</summary>
    internal long StorageOffset => _offset;

    /// <summary>The storage this tensor addresses (shared with its views).</summary>
    internal TensorStorage Storage => _storage;

    /// <summary>A new zeroed, owned, dense row-major host tensor with the given dims.</summary>
    /// <exception cref="ArgumentException">A dimension is not valid (see
    /// <see cref="TensorShape(ReadOnlySpan{int})"/>).</exception>
    public static NdTensor Allocate(params int[] dims) => Allocate(new TensorShape(dims));

    /// <summary>A new zeroed, owned host tensor of <paramref name="shape"/> (dense row-major).
    /// </summary>
    /// <exception cref="ArgumentException">The shape is default, not dense, or has more than
    /// <see cref="int.MaxValue"/> elements.</exception>
    public static NdTensor Allocate(TensorShape shape)
    {
        CheckHostShape(shape, nameof(shape));
        var storage = NativeHostStorage.AllocateZeroed(DataType.Float32, shape.ElementCount);
        return new NdTensor(storage, shape, 0, ownsStorage: true);
    }

    /// <summary>A new zeroed, owned, dense row-major tensor in the memory of
    /// <paramref name="device"/>; Dispose frees the device memory.</summary>
    /// <exception cref="ArgumentException">A dimension is not valid.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    public static NdTensor Allocate(ComputeDevice device, params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(device);
        var shape = new TensorShape(dims);
        CheckHostShape(shape, nameof(dims));
        if (device.IsHost) return Allocate(shape);
        using var use = device.Use();
        return new NdTensor(DeviceStorage.AllocateZeroed(device, shape.ElementCount), shape, 0,
            ownsStorage: true);
    }

    /// <summary>A new owned, dense tensor on <paramref name="device"/> (the host device gives a
    /// host tensor) with a copy of this tensor's elements: uploaded from the host, copied on
    /// the device, or copied device to device by ILGPU (peer copies between GPUs; no staging
    /// array of ours).</summary>
    /// <exception cref="ObjectDisposedException">This tensor or either device is disposed.
    /// </exception>
    public NdTensor ToDevice(ComputeDevice device)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(device);
        var result = Allocate(device, Shape.ToArray());
        try
        {
            if (IsHost) result.CopyFrom(AsReadOnlySpan());
            else if (device.IsHost) CopyTo(result.AsSpan());
            else CopyDeviceToDevice(this, result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Download: a new owned host tensor with a copy of this tensor's elements.</summary>
    public NdTensor ToHost()
    {
        ThrowIfDisposed();
        var result = Allocate(Shape.ToArray());
        CopyTo(result.AsSpan());
        return result;
    }

    private static void CopyDeviceToDevice(NdTensor source, NdTensor target)
    {
        var from = source.Device!;
        var to = target.Device!;
        if (ReferenceEquals(from, to))
        {
            using var use = to.Use();
            target.DeviceView().CopyFrom(source.DeviceView());
            to.Ilgpu.Synchronize();
            return;
        }
        // Two devices: hold both (in a fixed order, so two threads copying both ways cannot
        // deadlock), then let ILGPU copy between the accelerators.
        bool fromFirst = string.CompareOrdinal(from.Name, to.Name) <= 0;
        using var first = (fromFirst ? from : to).Use();
        using var second = (fromFirst ? to : from).Use();
        target.DeviceView().CopyFrom(source.DeviceView());
        from.Ilgpu.Synchronize();
        to.Ilgpu.Synchronize();
    }

    /// <summary>The elements as a view of device memory, for kernels (device tensors only);
    /// the caller holds the device.</summary>
    internal ArrayView<float> DeviceView()
    {
        ThrowIfDisposed();
        var storage = _storage as DeviceStorage ?? throw new InvalidOperationException(
            "NdTensor is on the host; it has no device view.");
        return storage.View(_offset, ElementCount);
    }

    /// <summary>Wraps <paramref name="data"/> as a dense row-major tensor, without a copy.
    /// data.Length must equal the product of <paramref name="dims"/>. Writes through the tensor
    /// are visible in the array; Dispose never frees or clears it.</summary>
    /// <exception cref="ArgumentException">The dims are not valid or do not match the
    /// length.</exception>
    public static NdTensor FromArray(float[] data, params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(data);
        return FromMemory(data, dims);
    }

    /// <summary>Wraps <paramref name="memory"/> as a dense row-major tensor, without a copy.
    /// memory.Length must equal the product of <paramref name="dims"/>. The caller keeps
    /// ownership: Dispose never frees it (a pinned or native <see cref="Memory{T}"/> must stay
    /// valid while the tensor is used).</summary>
    /// <exception cref="ArgumentException">The dims are not valid or do not match the
    /// length.</exception>
    public static NdTensor FromMemory(Memory<float> memory, params int[] dims)
    {
        var shape = new TensorShape(dims);
        if (shape.ElementCount != memory.Length)
            throw new ArgumentException(
                $"Shape {shape} has {shape.ElementCount} elements but the memory has "
                + $"{memory.Length}.", nameof(dims));
        return new NdTensor(new ManagedHostStorage<float>(memory), shape, 0, ownsStorage: true);
    }

    /// <summary>A new owned dense tensor holding a copy of <paramref name="source"/> (a tensor
    /// span is a ref struct and cannot be kept; use <see cref="FromMemory"/> to avoid the
    /// copy).</summary>
    /// <exception cref="ArgumentException">The source rank is not 1..8 or a length does not
    /// fit an int.</exception>
    public static NdTensor CopyOf(scoped in ReadOnlyTensorSpan<float> source)
    {
        Span<int> dims = stackalloc int[TensorShape.MaxRank];
        ReadOnlySpan<nint> lengths = source.Lengths;
        if (lengths.Length is 0 or > TensorShape.MaxRank)
            throw new ArgumentException(
                $"A tensor has rank 1..{TensorShape.MaxRank}; got rank {lengths.Length}.",
                nameof(source));
        for (int i = 0; i < lengths.Length; i++)
        {
            if (lengths[i] > int.MaxValue)
                throw new ArgumentException(
                    $"Dimension {i} is {lengths[i]}; at most {int.MaxValue}.", nameof(source));
            dims[i] = (int)lengths[i];
        }
        var tensor = Allocate(new TensorShape(dims[..lengths.Length]));
        try
        {
            source.CopyTo(tensor.AsTensorSpan());
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return tensor;
    }

    /// <summary>Element at <paramref name="indices"/> (one index per dimension); for tests and
    /// debugging, not for loops.</summary>
    /// <exception cref="ArgumentException">Wrong index count, or an index is out of range
    /// (<see cref="ArgumentOutOfRangeException"/> naming the dimension).</exception>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    public float this[params ReadOnlySpan<int> indices]
    {
        get => ElementRef(indices);
        set => ElementRef(indices) = value;
    }

    /// <summary>The elements as one span (dense host tensors only); writes go to the tensor.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    /// <exception cref="InvalidOperationException">Not on the host, not dense, or not
    /// Float32.</exception>
    public Span<float> AsSpan()
    {
        ThrowIfDisposed();
        if (!Shape.IsContiguous)
            throw new InvalidOperationException($"NdTensor {Shape} is not contiguous.");
        return HostSpan();
    }

    /// <summary>AsSpan(), read-only.</summary>
    public ReadOnlySpan<float> AsReadOnlySpan() => AsSpan();

    /// <summary>The tensor as a <see cref="TensorSpan{T}"/> over the same memory (no copy), with
    /// the same lengths and strides.</summary>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    /// <exception cref="InvalidOperationException">Not on the host or not Float32.</exception>
    public TensorSpan<float> AsTensorSpan()
    {
        ThrowIfDisposed();
        Span<nint> lengths = stackalloc nint[Rank];
        Span<nint> strides = stackalloc nint[Rank];
        Shape.CopyTo(lengths, strides);
        return new TensorSpan<float>(HostSpan(), lengths, strides);
    }

    /// <summary>AsTensorSpan(), read-only.</summary>
    public ReadOnlyTensorSpan<float> AsReadOnlyTensorSpan() => AsTensorSpan();

    /// <summary>Copies <paramref name="source"/> (row-major, exactly ElementCount elements)
    /// into the tensor.</summary>
    /// <exception cref="ArgumentException">source.Length != ElementCount.</exception>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    public void CopyFrom(ReadOnlySpan<float> source)
    {
        if (_storage is DeviceStorage)
        {
            if (source.Length != ElementCount)
                throw new ArgumentException(
                    $"source has {source.Length} elements; tensor {Shape} has {ElementCount}.",
                    nameof(source));
            using var use = Device!.Use();
            DeviceView().CopyFromCPU(source);
            Device.Ilgpu.Synchronize();
            return;
        }
        var span = AsSpan();
        if (source.Length != span.Length)
            throw new ArgumentException(
                $"source has {source.Length} elements; tensor {Shape} has {span.Length}.",
                nameof(source));
        source.CopyTo(span);
    }

    /// <summary>Copies the elements (row-major) to the start of <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="ArgumentException">destination is shorter than ElementCount.</exception>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    public void CopyTo(Span<float> destination)
    {
        if (_storage is DeviceStorage)
        {
            if (destination.Length < ElementCount)
                throw new ArgumentException(
                    $"destination has {destination.Length} elements; tensor {Shape} has "
                    + $"{ElementCount}.", nameof(destination));
            using var use = Device!.Use();
            DeviceView().CopyToCPU(destination[..(int)ElementCount]);
            Device.Ilgpu.Synchronize();
            return;
        }
        var span = AsSpan();
        if (destination.Length < span.Length)
            throw new ArgumentException(
                $"destination has {destination.Length} elements; tensor {Shape} has "
                + $"{span.Length}.", nameof(destination));
        span.CopyTo(destination);
    }

    /// <summary>View of element <paramref name="index"/> along dimension 0: rank - 1 dims
    /// (dims[1..]), no copy.</summary>
    /// <exception cref="ArgumentOutOfRangeException">index is not in 0..dims[0]-1.</exception>
    /// <exception cref="InvalidOperationException">The tensor has rank 1 (use the indexer).
    /// </exception>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    public NdTensor Slice(int index)
    {
        ThrowIfDisposed();
        if (Rank == 1)
            throw new InvalidOperationException(
                "Slice(index) drops dimension 0, and a tensor has rank >= 1; use the indexer.");
        if ((uint)index >= (uint)Shape[0])
            throw new ArgumentOutOfRangeException(nameof(index),
                $"Index {index} is outside dimension 0 of length {Shape[0]}.");
        long offset = _offset + index * Shape.GetStride(0);
        return new NdTensor(_storage, Shape.DropLeading(), offset, ownsStorage: false);
    }

    /// <summary>View of elements [start, start + length) along dimension 0, no copy.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside dimension 0.
    /// </exception>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    public NdTensor Slice(int start, int length)
    {
        ThrowIfDisposed();
        int dim0 = Shape[0];
        if ((uint)start > (uint)dim0)
            throw new ArgumentOutOfRangeException(nameof(start),
                $"Start {start} is outside dimension 0 of length {dim0}.");
        if ((uint)length > (uint)(dim0 - start))
            throw new ArgumentOutOfRangeException(nameof(length),
                $"Length {length} from start {start} runs past dimension 0 of length {dim0}.");
        long offset = _offset + start * Shape.GetStride(0);
        return new NdTensor(_storage, Shape.WithLeading(length), offset, ownsStorage: false);
    }

    /// <summary>View with new dims over the same elements (row-major order kept), no copy. One
    /// dimension may be -1 and is inferred.</summary>
    /// <exception cref="ArgumentException">The element count differs, more than one dim is -1,
    /// or a dim is otherwise negative.</exception>
    /// <exception cref="InvalidOperationException">The tensor is not contiguous.</exception>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    public NdTensor Reshape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        ThrowIfDisposed();
        if (!Shape.IsContiguous)
            throw new InvalidOperationException(
                $"NdTensor {Shape} is not contiguous; copy it first.");
        int[] resolved = (int[])dims.Clone();
        int inferred = Array.IndexOf(resolved, -1);
        if (inferred >= 0)
        {
            if (Array.IndexOf(resolved, -1, inferred + 1) >= 0)
                throw new ArgumentException("At most one dimension may be -1.", nameof(dims));
            long known = 1;
            for (int i = 0; i < resolved.Length; i++)
            {
                if (i != inferred)
                    known *= Math.Max(resolved[i], 0);
            }
            if (known == 0 || ElementCount % known != 0)
                throw new ArgumentException(
                    $"Cannot infer dimension {inferred}: {ElementCount} elements are not a "
                    + $"multiple of {known}.", nameof(dims));
            resolved[inferred] = (int)(ElementCount / known);
        }
        var shape = new TensorShape(resolved);
        if (shape.ElementCount != ElementCount)
            throw new ArgumentException(
                $"Shape {shape} has {shape.ElementCount} elements; tensor {Shape} has "
                + $"{ElementCount}.", nameof(dims));
        return new NdTensor(_storage, shape, _offset, ownsStorage: false);
    }

    /// <summary>Releases the storage if this tensor owns it (frees allocated memory; wrapped
    /// user memory is only detached). Idempotent. Disposing a view marks only the view.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && _ownsStorage)
            _storage.Dispose();
    }

    /// <summary>E.g. "NdTensor(2, 3, 4) Float32 host view".</summary>
    public override string ToString() =>
        $"NdTensor{Shape} {DataType} {(IsHost ? "host" : "device")}"
        + (IsView ? " view" : "") + (IsDisposed ? " disposed" : "");

    /// <summary>Throws <see cref="ObjectDisposedException"/> if this tensor or its owner is
    /// disposed.</summary>
    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    private ref float ElementRef(ReadOnlySpan<int> indices)
    {
        ThrowIfDisposed();
        long offset = Shape.OffsetOf(indices);
        return ref HostStorage().GetSpan<float>(_offset + offset, 1)[0];
    }

    // Elements [offset, offset + extent): every element this view can address.
    private Span<float> HostSpan()
    {
        long extent = Shape.Extent;
        if (extent > int.MaxValue)
            throw new InvalidOperationException(
                $"NdTensor {Shape} spans more than {int.MaxValue} elements; no span can hold it.");
        return HostStorage().GetSpan<float>(_offset, (int)extent);
    }

    private HostStorage HostStorage()
    {
        if (DataType != DataType.Float32)
            throw new InvalidOperationException($"NdTensor is {DataType}; expected Float32.");
        return _storage as HostStorage ?? throw new InvalidOperationException(
            "NdTensor is on a device; copy it to the host first.");
    }

    private static void CheckHostShape(TensorShape shape, string paramName)
    {
        if (shape.Rank == 0)
            throw new ArgumentException("The shape is default (rank 0).", paramName);
        if (!shape.IsContiguous)
            throw new ArgumentException($"Shape {shape} is not dense row-major.", paramName);
        if (shape.ElementCount > int.MaxValue)
            throw new ArgumentException(
                $"Shape {shape} has {shape.ElementCount} elements; a host tensor holds at most "
                + $"{int.MaxValue}.", paramName);
    }
}
