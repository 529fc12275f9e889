using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Managed.Kernels.Variants;

/// <summary>
/// Read-only table that a data-carrying operator (document ids, a tree, a block layout, head
/// flags, a bias table) reads inside a kernel. Operators are generic over it, so one operator
/// definition runs on the host (<see cref="HostTable{T}"/>) and on ILGPU devices
/// (<see cref="DeviceTable{T}"/>), each specialized at JIT time.
/// </summary>
public interface ITable<T> where T : unmanaged
{
    /// <summary>True when the host can read the elements (false for device memory), so host-side
    /// validation may inspect the data.</summary>
    static abstract bool HostReadable { get; }

    /// <summary>Number of elements.</summary>
    int Length { get; }

    /// <summary>Element <paramref name="index"/> (0 &lt;= index &lt; Length; not checked in kernels).</summary>
    T this[int index] { get; }
}

/// <summary>
/// A table in host memory that stays put: <see cref="VariantTable{T}.Host"/> (a pinned array
/// the table keeps alive), or <see cref="FromPointer"/> over memory the caller keeps fixed and
/// alive. The host SIMD kernel reads it; ILGPU devices cannot (their entry points reject it).
/// </summary>
public readonly unsafe struct HostTable<T> : ITable<T> where T : unmanaged
{
    private readonly T[]? _owner; // keeps a pinned array alive as long as any copy of the table
    private readonly T* _data;
    private readonly int _length;

    private HostTable(T[]? owner, T* data, int length)
    {
        _owner = owner;
        _data = data;
        _length = length;
    }

    /// <summary>A table over a pinned array (<see cref="GC.AllocateArray{T}(int, bool)"/> with
    /// pinned: true), which the table keeps alive.</summary>
    internal static HostTable<T> FromPinned(T[] pinned) =>
        new(pinned, pinned.Length == 0 ? null : (T*)Unsafe.AsPointer(ref pinned[0]), pinned.Length);

    /// <summary>A table over <paramref name="length"/> elements at <paramref name="data"/>,
    /// which the caller keeps fixed and alive while the table is used.</summary>
    public static HostTable<T> FromPointer(T* data, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (data == null && length > 0) throw new ArgumentNullException(nameof(data));
        return new(null, data, length);
    }

    /// <summary>true</summary>
    public static bool HostReadable => true;

    /// <inheritdoc/>
    public int Length => _length;

    /// <inheritdoc/>
    public T this[int index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            T value = _data[index];
            // _data points into _owner: every read keeps it reachable. A field that is never
            // read is dead to the JIT once it promotes the struct's fields to locals, and the
            // GC then frees the array under the pointer (a JIT intrinsic: no call, no cost).
            GC.KeepAlive(_owner);
            return value;
        }
    }
}

/// <summary>A table in device memory: a view of a buffer on the accelerator that runs the
/// kernel (ILGPU passes views nested in kernel-argument structs). The buffer's owner keeps it
/// alive while the table is used.</summary>
public readonly struct DeviceTable<T>(ArrayView<T> view) : ITable<T>, IDeviceTable
    where T : unmanaged
{
    private readonly ArrayView<T> _view = view;

    Accelerator? IDeviceTable.Owner => _view.Length == 0 ? null : _view.GetAccelerator();

    /// <summary>false</summary>
    public static bool HostReadable => false;

    /// <inheritdoc/>
    public int Length => (int)_view.Length;

    /// <inheritdoc/>
    public T this[int index] => _view[index];
}

/// <summary>
/// A table's host copy (a pinned array, kept alive by every <see cref="Host"/> table made from
/// it) and device copies on request, which are the caller's to dispose.
/// </summary>
public sealed class VariantTable<T> where T : unmanaged
{
    private readonly T[] _data;

    /// <summary>A pinned copy of <paramref name="data"/>.</summary>
    public VariantTable(ReadOnlySpan<T> data)
    {
        _data = GC.AllocateUninitializedArray<T>(data.Length, pinned: true);
        data.CopyTo(_data);
    }

    /// <summary>Number of elements.</summary>
    public int Length => _data.Length;

    /// <summary>The data.</summary>
    public ReadOnlySpan<T> Span => _data;

    /// <summary>The host table over the pinned copy (it keeps the copy alive).</summary>
    public HostTable<T> Host => HostTable<T>.FromPinned(_data);

    /// <summary>A device copy on <paramref name="accelerator"/>, of at least one element (an
    /// empty table gets one unused element): wrap <c>buffer.View.SubView(0, Length)</c> in a
    /// <see cref="DeviceTable{T}"/>. Dispose it after the kernels that use it.</summary>
    public MemoryBuffer1D<T, Stride1D.Dense> Upload(Accelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        var buffer = accelerator.Allocate1D<T>(Math.Max(1, _data.Length));
        if (_data.Length > 0) buffer.View.SubView(0, _data.Length).AsContiguous().CopyFromCPU(_data);
        return buffer;
    }
}
