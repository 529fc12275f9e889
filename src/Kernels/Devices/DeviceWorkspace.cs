using ILGPU;
using System.Numerics;
using ILGPU.Runtime;

namespace Managed.Kernels.Devices;

/// <summary>
/// Pooled scratch memory of one accelerator: a few slots, each one buffer that grows (to the
/// next power of two) and is kept until the device is disposed, so calls that need staging or
/// scratch (span entry points, two-pass normalizers) allocate nothing once warm. Used only by a
/// call holding the device's lease; work enqueued on the device's stream is ordered, so the
/// next call may reuse a slot while the previous call's kernels are still queued.
/// </summary>
internal sealed class DeviceWorkspace(Accelerator accelerator) : IDisposable
{
    /// <summary>Slots a single call may hold at once.</summary>
    public const int Slots = 8;

    private readonly MemoryBuffer1D<byte, Stride1D.Dense>?[] _buffers =
        new MemoryBuffer1D<byte, Stride1D.Dense>?[Slots];

    /// <summary>Bytes held by all slots.</summary>
    public long Bytes => _buffers.Sum(b => b?.Length ?? 0);

    /// <summary><paramref name="length"/> elements of slot <paramref name="slot"/> (contents
    /// undefined); the view is valid until the slot is asked for again.</summary>
    public ArrayView<T> Get<T>(int slot, long length) where T : unmanaged
    {
        long bytes = Math.Max(1, length) * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        var buffer = _buffers[slot];
        if (buffer is null || buffer.Length < bytes)
        {
            buffer?.Dispose();
            buffer = accelerator.Allocate1D<byte>((long)BitOperations.RoundUpToPowerOf2(
                (ulong)Math.Max(bytes, 256)));
            _buffers[slot] = buffer;
        }
        return buffer.View.AsContiguous().SubView(0, bytes).Cast<T>().SubView(0, length);
    }

    /// <summary>Frees every slot.</summary>
    public void Dispose()
    {
        for (int i = 0; i < _buffers.Length; i++)
        {
            _buffers[i]?.Dispose();
            _buffers[i] = null;
        }
    }
}
