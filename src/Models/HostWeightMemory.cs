using System.Buffers;
using System.Runtime.InteropServices;

namespace Managed.Models;

/// <summary>Weights copied into process memory, 2 MB aligned; on Linux the pages are advised
/// huge (MADV_HUGEPAGE), so streaming them costs few TLB misses. Freed on Dispose.</summary>
internal sealed unsafe class HostWeightMemory<T> : MemoryManager<T> where T : unmanaged
{
    private const nuint Alignment = 2 << 20;
    private T* _pointer;
    private readonly int _length;

    public HostWeightMemory(ReadOnlySpan<T> source)
    {
        _length = source.Length;
        nuint bytes = (nuint)Math.Max(1L, (long)_length * sizeof(T));
        nuint rounded = (bytes + Alignment - 1) & ~(Alignment - 1);
        _pointer = (T*)NativeMemory.AlignedAlloc(rounded, Alignment);
        if (OperatingSystem.IsLinux()) _ = LinuxMemory.Madvise(_pointer, rounded, 14 /* MADV_HUGEPAGE */);
        source.CopyTo(new Span<T>(_pointer, _length));
    }

    public override Span<T> GetSpan()
    {
        ObjectDisposedException.ThrowIf(_pointer is null, this);
        return new Span<T>(_pointer, _length);
    }

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ObjectDisposedException.ThrowIf(_pointer is null, this);
        return new MemoryHandle(_pointer + elementIndex);
    }

    public override void Unpin() { }

    protected override void Dispose(bool disposing)
    {
        if (_pointer is null) return;
        NativeMemory.AlignedFree(_pointer);
        _pointer = null;
    }
}

/// <summary>libc's madvise, for <see cref="HostWeightMemory{T}"/> on Linux.</summary>
internal static unsafe partial class LinuxMemory
{
    [LibraryImport("libc", EntryPoint = "madvise")]
    internal static partial int Madvise(void* address, nuint length, int advice);
}
