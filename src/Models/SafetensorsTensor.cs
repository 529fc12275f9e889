using Managed.Kernels.Layouts;
using Managed.Tensors;

namespace Managed.Models;

/// <summary>
/// One tensor of a <see cref="SafetensorsFile"/>: its name, dtype, shape and where its bytes lie.
/// The data stays in the memory-mapped file: <see cref="AsMemory{T}"/>,
/// <see cref="GetBytes"/> and <see cref="ToNdTensor"/> copy nothing. The mapping is
/// copy-on-write: writes through a tensor change this process's pages, never the file.
/// Valid while the file is open.
/// </summary>
public sealed class SafetensorsTensor
{
    private readonly long[] _shape;

    internal SafetensorsTensor(SafetensorsFile file, string name, SafetensorsDType dtype,
        long[] shape, long elementCount, long dataBegin, long dataEnd)
    {
        File = file;
        Name = name;
        DType = dtype;
        _shape = shape;
        ElementCount = elementCount;
        DataBegin = dataBegin;
        DataEnd = dataEnd;
    }

    /// <summary>The file that holds the tensor.</summary>
    public SafetensorsFile File { get; }

    /// <summary>The tensor's name in the header.</summary>
    public string Name { get; }

    /// <summary>The stored element type.</summary>
    public SafetensorsDType DType { get; }

    /// <summary>The stored element type as a tensor <see cref="Managed.Tensors.DataType"/>, or
    /// null when <see cref="DType"/> is not a weight type (F32, F16, BF16).</summary>
    public DataType? DataType => DType.ToDataType();

    /// <summary>The dims, outermost first (empty for a scalar).</summary>
    public IReadOnlyList<long> Shape => _shape;

    /// <summary>Product of <see cref="Shape"/> (1 for a scalar, 0 when a dim is 0).</summary>
    public long ElementCount { get; }

    /// <summary>data_offsets[0]: first byte, relative to the byte after the header.</summary>
    public long DataBegin { get; }

    /// <summary>data_offsets[1]: one past the last byte, relative to the byte after the header.
    /// </summary>
    public long DataEnd { get; }

    /// <summary>DataEnd − DataBegin.</summary>
    public long ByteLength => DataEnd - DataBegin;

    /// <summary>Offset of the first byte from the start of the file.</summary>
    public long FileOffset => File.DataStart + DataBegin;

    /// <summary>The shape as text, e.g. "[4096, 11008]".</summary>
    public string ShapeText => "[" + string.Join(", ", _shape) + "]";

    /// <summary>The shape as int dims (what <see cref="TensorShape"/> takes).</summary>
    /// <exception cref="ModelFormatException">A dim does not fit an int.</exception>
    public int[] GetIntShape()
    {
        var dims = new int[_shape.Length];
        for (int i = 0; i < dims.Length; i++)
        {
            if (_shape[i] > int.MaxValue)
                throw Error($"dim {i} is {_shape[i]}, larger than an int.");
            dims[i] = (int)_shape[i];
        }
        return dims;
    }

    /// <summary>The stored bytes, any dtype, read-only, no copy.</summary>
    /// <exception cref="ObjectDisposedException">The file is disposed.</exception>
    /// <exception cref="ModelFormatException">The tensor is 2 GiB or more.</exception>
    public unsafe ReadOnlySpan<byte> GetBytes()
    {
        File.ThrowIfDisposed();
        if (ByteLength > int.MaxValue)
            throw Error($"{ByteLength} bytes do not fit one span.");
        return new ReadOnlySpan<byte>(File.DataPointer + DataBegin, (int)ByteLength);
    }

    /// <summary>The elements as <see cref="ReadOnlyMemory{T}"/> over the mapping, no copy:
    /// T is float for F32, <see cref="Half"/> for F16, <see cref="BFloat16"/> for BF16.</summary>
    /// <exception cref="ModelFormatException">The dtype is not a weight type, T does not match
    /// it, or the tensor has more than int.MaxValue elements.</exception>
    /// <exception cref="ObjectDisposedException">The file is disposed.</exception>
    public ReadOnlyMemory<T> AsMemory<T>() where T : unmanaged => AsWritableMemory<T>();

    /// <summary>As <see cref="AsMemory{T}"/>, writable: writes land in this process's
    /// copy-on-write pages and never reach the file.</summary>
    /// <exception cref="ModelFormatException">The dtype is not a weight type, T does not match
    /// it, or the tensor has more than int.MaxValue elements.</exception>
    /// <exception cref="ObjectDisposedException">The file is disposed.</exception>
    public unsafe Memory<T> AsWritableMemory<T>() where T : unmanaged
    {
        var dataType = RequireWeightType();
        var wanted = typeof(T) == typeof(float) ? Tensors.DataType.Float32
            : typeof(T) == typeof(Half) ? Tensors.DataType.Float16
            : typeof(T) == typeof(BFloat16) ? Tensors.DataType.BFloat16
            : (DataType?)null;
        if (wanted != dataType)
            throw Error($"is {DType} ({dataType}); it was read as {typeof(T).Name}.");
        if (ElementCount > int.MaxValue)
            throw Error($"{ElementCount} elements do not fit one Memory<{typeof(T).Name}>.");
        File.ThrowIfDisposed();
        if (ElementCount == 0)
            return Memory<T>.Empty;
        return new MappedMemoryManager<T>(File, File.DataPointer + DataBegin, (int)ElementCount)
            .Memory;
    }

    /// <summary>A dense host <see cref="NdTensor"/> of the stored type over the mapped bytes,
    /// without a copy (<see cref="NdTensor.FromMemory{T}"/>). The tensor does not own the
    /// mapping: once the file is disposed every use of it throws
    /// <see cref="ObjectDisposedException"/>.</summary>
    /// <exception cref="ModelFormatException">The dtype is not a weight type, or the rank is 0
    /// or above <see cref="TensorShape.MaxRank"/>, or a dim does not fit an int.</exception>
    public NdTensor ToNdTensor()
    {
        var dataType = RequireWeightType();
        if (_shape.Length is 0 or > TensorShape.MaxRank)
            throw Error(
                $"has rank {_shape.Length}; an NdTensor has rank 1..{TensorShape.MaxRank}.");
        var dims = GetIntShape();
        return dataType switch
        {
            Tensors.DataType.Float32 => NdTensor.FromMemory(AsWritableMemory<float>(), dims),
            Tensors.DataType.Float16 => NdTensor.FromMemory(AsWritableMemory<Half>(), dims),
            _ => NdTensor.FromMemory(AsWritableMemory<BFloat16>(), dims),
        };
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {DType} {ShapeText}";

    private DataType RequireWeightType() =>
        DataType ?? throw Error(
            $"is {DType}; weights must be F32, F16 or BF16 (read its bytes with GetBytes).");

    private ModelFormatException Error(string message) => new(File.Path, Name, message);
}
