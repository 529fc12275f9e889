using System.Buffers;

namespace Managed.Models;

/// <summary>
/// Elements of type <typeparamref name="T"/> at a fixed address inside a mapped safetensors
/// file, exposed as <see cref="Memory{T}"/> without a copy. The mapping never moves, so pinning
/// is free. Every <see cref="GetSpan"/> checks that the file is still open: a tensor built over
/// this memory throws <see cref="ObjectDisposedException"/> once the file is disposed, instead of
/// reading unmapped pages.
/// </summary>
internal sealed unsafe class MappedMemoryManager<T>(SafetensorsFile owner, byte* pointer,
    int length) : MemoryManager<T> where T : unmanaged
{
    public override Span<T> GetSpan()
    {
        owner.ThrowIfDisposed();
        return new Span<T>(pointer, length);
    }

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        owner.ThrowIfDisposed();
        if ((uint)elementIndex > (uint)length)
            throw new ArgumentOutOfRangeException(nameof(elementIndex));
        return new MemoryHandle(pointer + (long)elementIndex * sizeof(T));
    }

    public override void Unpin() { }

    // The mapping belongs to the file; disposing a memory manager frees nothing.
    protected override void Dispose(bool disposing) { }
}
