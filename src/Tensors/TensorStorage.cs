using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Managed.Tensors;

/// <summary>
/// One block of elements that tensors address by offset. A storage is created by exactly one
/// owning <see cref="NdTensor"/> and shared by its views; disposing it marks it dead so that every
/// view sees <see cref="IsDisposed"/>. Subclasses: <see cref="NativeHostStorage"/> (owned, aligned
/// native memory), <see cref="ManagedHostStorage{T}"/> (user memory, never freed here); a device
/// storage (an ILGPU buffer) derives from this class directly.
/// </summary>
internal abstract class TensorStorage : IDisposable
{
    private int _disposed;

    protected TensorStorage(DataType dataType, long length)
    {
        DataType = dataType;
        Length = length;
    }

    /// <summary>Element type.</summary>
    public DataType DataType { get; }

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>True when <see cref="Dispose"/> frees memory (false for wrapped user memory).
    /// </summary>
    public virtual bool OwnsMemory => true;

    /// <summary>True once <see cref="Dispose"/> has run.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Marks the storage dead and releases what it owns; idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            Release();
    }

    /// <summary>Frees what the storage owns; called once.</summary>
    protected abstract void Release();
}

/// <summary>Storage in host memory, addressable by a managed reference.</summary>
internal abstract class HostStorage(DataType dataType, long length)
    : TensorStorage(dataType, length)
{
    /// <summary>Reference to element 0; valid until <see cref="TensorStorage.Dispose"/>.</summary>
    protected abstract ref byte Origin { get; }

    /// <summary>The bytes of elements [offset, offset + count).</summary>
    public Span<byte> GetBytes(long offset, long count)
    {
        int size = DataType.SizeInBytes();
        Debug.Assert(offset >= 0 && count >= 0 && offset + count <= Length);
        return MemoryMarshal.CreateSpan(
            ref Unsafe.AddByteOffset(ref Origin, (nint)(offset * size)),
            checked((int)(count * size)));
    }

    /// <summary>Elements [offset, offset + length) as a span of <typeparamref name="T"/>.</summary>
    public Span<T> GetSpan<T>(long offset, int length) where T : unmanaged
    {
        Debug.Assert(DataTypeExtensions.Of<T>() == DataType);
        Debug.Assert(offset >= 0 && length >= 0 && offset + length <= Length);
        ref byte first = ref Unsafe.AddByteOffset(
            ref Origin, (nint)(offset * Unsafe.SizeOf<T>()));
        return MemoryMarshal.CreateSpan(ref Unsafe.As<byte, T>(ref first), length);
    }
}

/// <summary>
/// Owned host memory from <see cref="NativeMemory.AlignedAlloc"/>, 64-byte aligned so that
/// element 0 starts a <see cref="System.Runtime.Intrinsics.Vector512{T}"/>. The memory is held by
/// a <see cref="SafeHandle"/>, so a storage that is never disposed is freed by its finalizer.
/// </summary>
internal sealed unsafe class NativeHostStorage : HostStorage
{
    /// <summary>Byte alignment of element 0: one Vector512 or one x86 cache line.</summary>
    public const int Alignment = 64;

    private NativeHostStorage(DataType dataType, long length, AlignedMemoryHandle handle)
        : base(dataType, length) => Handle = handle;

    /// <summary>The memory; exposed for tests of alignment and finalization.</summary>
    internal AlignedMemoryHandle Handle { get; }

    /// <summary>Allocates <paramref name="length"/> zeroed elements.</summary>
    public static NativeHostStorage AllocateZeroed(DataType dataType, long length)
    {
        long bytes = checked(length * dataType.SizeInBytes());
        return new NativeHostStorage(dataType, length, new AlignedMemoryHandle((nuint)bytes));
    }

    protected override ref byte Origin => ref *(byte*)Handle.DangerousGetHandle();

    protected override void Release() => Handle.Dispose();
}

/// <summary>
/// A block from <see cref="NativeMemory.AlignedAlloc"/>, freed once by Dispose or by the
/// finalizer. The size is reported to the GC so that forgotten tensors are collected.
/// </summary>
internal sealed unsafe class AlignedMemoryHandle : SafeHandle
{
    private readonly long _bytes;

    /// <summary>Allocates and zeroes <paramref name="bytes"/> bytes (at least one line).</summary>
    public AlignedMemoryHandle(nuint bytes) : base(0, ownsHandle: true)
    {
        // AlignedAlloc(0) may return null; one aligned line keeps the handle valid.
        nuint size = Math.Max(bytes, (nuint)NativeHostStorage.Alignment);
        SetHandle((nint)NativeMemory.AlignedAlloc(size, NativeHostStorage.Alignment));
        NativeMemory.Clear((void*)handle, size);
        _bytes = (long)size;
        GC.AddMemoryPressure(_bytes);
    }

    /// <inheritdoc/>
    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        NativeMemory.AlignedFree((void*)handle);
        GC.RemoveMemoryPressure(_bytes);
        return true;
    }
}

/// <summary>
/// User memory (an array or <see cref="Memory{T}"/>) wrapped without a copy. Dispose only marks
/// the storage dead: the memory belongs to the caller and is never freed here.
/// </summary>
internal sealed class ManagedHostStorage<T>(Memory<T> memory)
    : HostStorage(DataTypeExtensions.Of<T>(), memory.Length) where T : unmanaged
{
    protected override ref byte Origin =>
        ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(memory.Span));

    public override bool OwnsMemory => false;

    protected override void Release() { }
}
