using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Tensors;

/// <summary>
/// Elements in one ILGPU buffer (bytes, viewed as the element type) on a
/// <see cref="ComputeDevice"/>. Released (the device memory freed) when the owning tensor is
/// disposed; if the device is disposed first, the device freed the buffer and every use of the
/// tensor throws <see cref="ObjectDisposedException"/>.
/// </summary>
internal sealed class DeviceStorage : TensorStorage
{
    private readonly MemoryBuffer1D<byte, Stride1D.Dense> _buffer;

    private DeviceStorage(ComputeDevice device, DataType dataType,
        MemoryBuffer1D<byte, Stride1D.Dense> buffer, long length) : base(dataType, length)
    {
        Device = device;
        _buffer = buffer;
    }

    /// <summary>The device the buffer lives on.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Allocates <paramref name="length"/> zeroed elements on <paramref name="device"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    public static DeviceStorage AllocateZeroed(ComputeDevice device, DataType dataType,
        long length)
    {
        var accelerator = device.Accelerator ?? throw new ArgumentException(
            "The host device has no device memory; allocate a host tensor.", nameof(device));
        // Whole 4-byte words, so every element type's view of the bytes is aligned.
        long bytes = (Math.Max(1, length) * dataType.SizeInBytes() + 3) & ~3L;
        var buffer = accelerator.Allocate1D<byte>(bytes);
        buffer.MemSetToZero();
        return new DeviceStorage(device, dataType, buffer, length);
    }

    /// <summary>Elements [offset, offset + length) as a view for kernels and copies; valid
    /// while the caller holds the device (a lease) and the tensor is alive.</summary>
    /// <exception cref="ObjectDisposedException">The tensor or the device is disposed.
    /// </exception>
    public ArrayView<T> View<T>(long offset, long length) where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        ObjectDisposedException.ThrowIf(Device.IsDisposed, Device);
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        return _buffer.View.AsContiguous().SubView(offset * size, length * size).Cast<T>();
    }

    // A disposed device has freed its buffers already.
    protected override void Release()
    {
        if (!Device.IsDisposed) _buffer.Dispose();
    }
}
