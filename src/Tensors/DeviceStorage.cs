using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Backends;

namespace Managed.Tensors;

/// <summary>
/// Elements in one ILGPU buffer on the accelerator of an <see cref="IlgpuBackend"/>. Released
/// (the device memory freed) when the owning tensor is disposed; the backend must outlive it.
/// </summary>
internal sealed class DeviceStorage : TensorStorage
{
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _buffer;

    private DeviceStorage(IlgpuBackend device, MemoryBuffer1D<float, Stride1D.Dense> buffer)
        : base(DataType.Float32, buffer.Length)
    {
        Device = device;
        _buffer = buffer;
    }

    /// <summary>The device the buffer lives on.</summary>
    public IlgpuBackend Device { get; }

    /// <summary>Allocates <paramref name="length"/> zeroed elements on <paramref name="device"/>.</summary>
    public static DeviceStorage AllocateZeroed(IlgpuBackend device, long length)
    {
        var buffer = device.Accelerator.Allocate1D<float>(Math.Max(1, length));
        buffer.MemSetToZero();
        return new DeviceStorage(device, buffer);
    }

    /// <summary>Elements [offset, offset + length) as a view for kernels.</summary>
    public ArrayView<float> View(long offset, long length) =>
        _buffer.View.SubView(offset, length);

    protected override void Release() => _buffer.Dispose();
}
