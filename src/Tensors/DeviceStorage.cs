using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Tensors;

/// <summary>
/// Elements in one ILGPU buffer on a <see cref="ComputeDevice"/>. Released (the device memory
/// freed) when the owning tensor is disposed; if the device is disposed first, the device freed
/// the buffer and every use of the tensor throws <see cref="ObjectDisposedException"/>.
/// </summary>
internal sealed class DeviceStorage : TensorStorage
{
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _buffer;

    private DeviceStorage(ComputeDevice device, MemoryBuffer1D<float, Stride1D.Dense> buffer,
        long length) : base(DataType.Float32, length)
    {
        Device = device;
        _buffer = buffer;
    }

    /// <summary>The device the buffer lives on.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Allocates <paramref name="length"/> zeroed elements on <paramref name="device"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    public static DeviceStorage AllocateZeroed(ComputeDevice device, long length)
    {
        var accelerator = device.Accelerator ?? throw new ArgumentException(
            "The host device has no device memory; allocate a host tensor.", nameof(device));
        var buffer = accelerator.Allocate1D<float>(Math.Max(1, length));
        buffer.MemSetToZero();
        return new DeviceStorage(device, buffer, length);
    }

    /// <summary>Elements [offset, offset + length) as a view for kernels; valid while the
    /// caller holds the device (a lease) and the tensor is alive.</summary>
    /// <exception cref="ObjectDisposedException">The tensor or the device is disposed.
    /// </exception>
    public ArrayView<float> View(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        ObjectDisposedException.ThrowIf(Device.IsDisposed, Device);
        return _buffer.View.SubView(offset, length);
    }

    // A disposed device has freed its buffers already.
    protected override void Release()
    {
        if (!Device.IsDisposed) _buffer.Dispose();
    }
}
