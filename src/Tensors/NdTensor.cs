using ILGPU;
using ILGPU.Runtime;
using System.Runtime.InteropServices;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using System.Numerics.Tensors;

namespace Managed.Tensors;

/// <summary>
/// A tensor of <see cref="float"/>, <see cref="System.Half"/> or <see cref="BFloat16"/> elements
/// (<see cref="DataType"/>) with a
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

    /// <summary>Element type.</summary>
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
    public static NdTensor Allocate(TensorShape shape) => Allocate(shape, DataType.Float32);

    /// <summary>A new zeroed, owned host tensor of <paramref name="dataType"/> elements.</summary>
    /// <exception cref="ArgumentException">A dimension is not valid.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The data type is not defined.</exception>
    public static NdTensor Allocate(DataType dataType, params int[] dims) =>
        Allocate(new TensorShape(dims), dataType);

    private static NdTensor Allocate(TensorShape shape, DataType dataType)
    {
        CheckHostShape(shape, nameof(shape));
        var storage = NativeHostStorage.AllocateZeroed(dataType, shape.ElementCount);
        return new NdTensor(storage, shape, 0, ownsStorage: true);
    }

    /// <summary>A new zeroed, owned, dense row-major tensor in the memory of
    /// <paramref name="device"/>; Dispose frees the device memory.</summary>
    /// <exception cref="ArgumentException">A dimension is not valid.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    public static NdTensor Allocate(ComputeDevice device, params int[] dims) =>
        Allocate(device, DataType.Float32, dims);

    /// <summary>A new zeroed, owned, dense tensor of <paramref name="dataType"/> elements in the
    /// memory of <paramref name="device"/> (host memory for the host device).</summary>
    /// <exception cref="ArgumentException">A dimension is not valid.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The data type is not defined.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    public static NdTensor Allocate(ComputeDevice device, DataType dataType, params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(device);
        var shape = new TensorShape(dims);
        CheckHostShape(shape, nameof(dims));
        dataType.SizeInBytes(); // throws for an undefined type
        if (device.IsHost) return Allocate(shape, dataType);
        using var use = device.Use();
        return new NdTensor(DeviceStorage.AllocateZeroed(device, dataType, shape.ElementCount),
            shape, 0, ownsStorage: true);
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
        var result = Allocate(device, DataType, Shape.ToArray());
        try
        {
            if (IsHost) result.CopyFromBytes(HostBytes());
            else if (device.IsHost) CopyToBytes(result.HostBytes());
            else CopyDeviceToDevice(this, result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Download: a new owned host tensor with a copy of this tensor's elements (same
    /// element type).</summary>
    public NdTensor ToHost()
    {
        ThrowIfDisposed();
        var result = Allocate(DataType, Shape.ToArray());
        try
        {
            CopyToBytes(result.HostBytes());
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    private static void CopyDeviceToDevice(NdTensor source, NdTensor target)
    {
        var from = source.Device!;
        var to = target.Device!;
        if (ReferenceEquals(from, to))
        {
            using var use = to.Use();
            target.DeviceBytes().CopyFrom(source.DeviceBytes());
            to.Ilgpu.Synchronize();
            return;
        }
        // Two devices: hold both (in a fixed order, so two threads copying both ways cannot
        // deadlock), then let ILGPU copy between the accelerators.
        bool fromFirst = string.CompareOrdinal(from.Name, to.Name) <= 0;
        using var first = (fromFirst ? from : to).Use();
        using var second = (fromFirst ? to : from).Use();
        target.DeviceBytes().CopyFrom(source.DeviceBytes());
        from.Ilgpu.Synchronize();
        to.Ilgpu.Synchronize();
    }

    /// <summary>The elements as a view of device memory, for kernels (device tensors only);
    /// the caller holds the device.</summary>
    internal ArrayView<float> DeviceView()
    {
        ThrowIfDisposed();
        if (DataType != DataType.Float32)
            throw new InvalidOperationException($"NdTensor is {DataType}; expected Float32.");
        return StorageOnDevice().View<float>(_offset, ElementCount);
    }

    /// <summary>The memory from the first element to the last (its shape's extent), possibly
    /// with gaps, as a view of <typeparamref name="T"/> (device tensors; the caller holds the
    /// device).</summary>
    internal ArrayView<T> DeviceExtent<T>() where T : unmanaged
    {
        ThrowIfDisposed();
        return StorageOnDevice().View<T>(_offset, Shape.Extent);
    }

    /// <summary>As <see cref="DeviceExtent{T}"/>, on the host.</summary>
    internal Span<T> HostExtent<T>() where T : unmanaged
    {
        ThrowIfDisposed();
        var host = _storage as HostStorage ?? throw new InvalidOperationException(
            "NdTensor is on a device; copy it to the host first.");
        return MemoryMarshal.Cast<byte, T>(host.GetBytes(_offset, Shape.Extent));
    }

    // The elements' bytes on the device (dense tensors: every copy here is of one).
    private ArrayView<byte> DeviceBytes()
    {
        ThrowIfDisposed();
        int size = DataType.SizeInBytes();
        return StorageOnDevice().View<byte>(_offset * size, ElementCount * size);
    }

    private DeviceStorage StorageOnDevice() => _storage as DeviceStorage
        ?? throw new InvalidOperationException("NdTensor is on the host; it has no device view.");

    // The elements' bytes on the host (dense).
    private Span<byte> HostBytes()
    {
        ThrowIfDisposed();
        if (!Shape.IsContiguous)
            throw new InvalidOperationException($"NdTensor {Shape} is not contiguous.");
        var host = _storage as HostStorage ?? throw new InvalidOperationException(
            "NdTensor is on a device; copy it to the host first.");
        return host.GetBytes(_offset, ElementCount);
    }

    private void CopyFromBytes(ReadOnlySpan<byte> source)
    {
        if (_storage is DeviceStorage storage)
        {
            using var use = storage.Device.Use();
            DeviceBytes().CopyFromCPU(source);
            storage.Device.Ilgpu.Synchronize();
            return;
        }
        source.CopyTo(HostBytes());
    }

    private void CopyToBytes(Span<byte> destination)
    {
        if (_storage is DeviceStorage storage)
        {
            using var use = storage.Device.Use();
            DeviceBytes().CopyToCPU(destination);
            storage.Device.Ilgpu.Synchronize();
            return;
        }
        HostBytes().CopyTo(destination);
    }

    /// <summary>
    /// A new owned tensor on the same device with the elements converted to
    /// <paramref name="dataType"/>: widening exact, narrowing rounded to nearest even (NaN
    /// stays NaN), converted with SIMD on the host (a device tensor's elements are converted on
    /// the host and uploaded).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The tensor or its device is disposed.
    /// </exception>
    /// <exception cref="InvalidOperationException">The tensor is not dense.</exception>
    public NdTensor ConvertTo(DataType dataType)
    {
        ThrowIfDisposed();
        if (!Shape.IsContiguous)
            throw new InvalidOperationException($"NdTensor {Shape} is not contiguous.");
        int n = checked((int)ElementCount);
        var floats = new float[n];
        var source = new byte[n * DataType.SizeInBytes()];
        CopyToBytes(source);
        switch (DataType)
        {
            case DataType.Float32: MemoryMarshal.Cast<byte, float>(source).CopyTo(floats); break;
            case DataType.Float16:
                ElementConvert.ToSingle(MemoryMarshal.Cast<byte, System.Half>(source), floats);
                break;
            default:
                ElementConvert.ToSingle(MemoryMarshal.Cast<byte, BFloat16>(source), floats); break;
        }
        var target = new byte[n * dataType.SizeInBytes()];
        switch (dataType)
        {
            case DataType.Float32:
                floats.AsSpan().CopyTo(MemoryMarshal.Cast<byte, float>(target.AsSpan()));
                break;
            case DataType.Float16:
                ElementConvert.FromSingle(floats,
                    MemoryMarshal.Cast<byte, System.Half>(target.AsSpan()));
                break;
            default:
                ElementConvert.FromSingle(floats,
                    MemoryMarshal.Cast<byte, BFloat16>(target.AsSpan()));
                break;
        }
        var result = Device is { } device
            ? Allocate(device, dataType, Shape.ToArray()) : Allocate(dataType, Shape.ToArray());
        try
        {
            result.CopyFromBytes(target);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
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
    public static NdTensor FromMemory(Memory<float> memory, params int[] dims) =>
        FromMemory<float>(memory, dims);

    /// <summary>Wraps <paramref name="data"/> (float, System.Half or BFloat16 elements) as a dense
    /// row-major tensor, without a copy; see <see cref="FromArray(float[], int[])"/>.</summary>
    /// <exception cref="ArgumentException">T is not an element type, or the dims are not valid
    /// or do not match the length.</exception>
    public static NdTensor FromArray<T>(T[] data, params int[] dims) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(data);
        return FromMemory<T>(data, dims);
    }

    /// <summary>Wraps <paramref name="memory"/> (float, System.Half or BFloat16 elements) as a
    /// dense row-major tensor, without a copy; see <see cref="FromMemory(Memory{float}, int[])"/>.
    /// </summary>
    /// <exception cref="ArgumentException">T is not an element type, or the dims are not valid
    /// or do not match the length.</exception>
    public static NdTensor FromMemory<T>(Memory<T> memory, params int[] dims) where T : unmanaged
    {
        DataTypeExtensions.Of<T>();
        var shape = new TensorShape(dims);
        if (shape.ElementCount != memory.Length)
            throw new ArgumentException(
                $"Shape {shape} has {shape.ElementCount} elements but the memory has "
                + $"{memory.Length}.", nameof(dims));
        return new NdTensor(new ManagedHostStorage<T>(memory), shape, 0, ownsStorage: true);
    }

    /// <summary>The elements as one span of <typeparamref name="T"/> (dense host tensors whose
    /// <see cref="DataType"/> is T's); writes go to the tensor.</summary>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    /// <exception cref="InvalidOperationException">Not on the host, not dense, or another
    /// element type.</exception>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        ThrowIfDisposed();
        if (DataType != DataTypeExtensions.Of<T>())
            throw new InvalidOperationException(
                $"NdTensor is {DataType}; {typeof(T).Name} elements were asked for.");
        return MemoryMarshal.Cast<byte, T>(HostBytes());
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

    /// <summary>View with dimensions <paramref name="dim0"/> and <paramref name="dim1"/>
    /// swapped, no copy: (batch, seq, heads, dim).Transpose(1, 2) is the (batch, heads, seq, dim)
    /// view attention takes. The view is strided (not contiguous).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is not in 0..rank-1.</exception>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    public NdTensor Transpose(int dim0, int dim1)
    {
        ThrowIfDisposed();
        CheckDimension(dim0, nameof(dim0));
        CheckDimension(dim1, nameof(dim1));
        return new NdTensor(_storage, Shape.Swap(dim0, dim1), _offset, ownsStorage: false);
    }

    /// <summary>View of elements [start, start + length) along <paramref name="dim"/>, no copy:
    /// the filled rows of a cache of larger capacity, for one.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The dimension or range is out of range.
    /// </exception>
    /// <exception cref="ObjectDisposedException">The tensor or its owner is disposed.</exception>
    public NdTensor Narrow(int dim, int start, int length)
    {
        ThrowIfDisposed();
        CheckDimension(dim, nameof(dim));
        int size = Shape[dim];
        if ((uint)start > (uint)size || (uint)length > (uint)(size - start))
            throw new ArgumentOutOfRangeException(nameof(length),
                $"Range [{start}, {(long)start + length}) is outside dimension {dim} of length "
                + $"{size}.");
        long offset = _offset + start * Shape.GetStride(dim);
        return new NdTensor(_storage, Shape.WithDim(dim, length), offset, ownsStorage: false);
    }

    private void CheckDimension(int dim, string name)
    {
        if ((uint)dim >= (uint)Rank)
            throw new ArgumentOutOfRangeException(name,
                $"Dimension {dim} is outside 0..{Rank - 1}.");
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
        ThrowIfDisposed();
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
