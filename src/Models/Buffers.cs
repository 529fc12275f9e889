using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Models;

/// <summary>
/// One buffer of a run state: float elements (or ints, <see cref="IndexBuffer"/>) in host
/// memory or on an ILGPU accelerator, allocated once. <see cref="Act"/> is a range of it.
/// </summary>
internal sealed class FloatBuffer : IDisposable
{
    private readonly float[]? _host;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>? _device;

    public FloatBuffer(Accelerator? accelerator, long length)
    {
        Length = Math.Max(1, length);
        if (accelerator is null)
            _host = GC.AllocateArray<float>(checked((int)Length), pinned: true);
        else
        {
            _device = accelerator.Allocate1D<float>(Length);
            _device.MemSetToZero();
        }
    }

    private FloatBuffer(float[] host) => (_host, Length) = (host, host.Length);

    /// <summary>A buffer holding <paramref name="data"/>: the array itself on the host, a
    /// copy on a device.</summary>
    public static FloatBuffer From(Accelerator? accelerator, float[] data)
    {
        if (accelerator is null)
            return new FloatBuffer(data);
        var buffer = new FloatBuffer(accelerator, data.Length);
        buffer._device!.View.AsContiguous().SubView(0, data.Length).CopyFromCPU(data);
        return buffer;
    }

    public long Length { get; }

    /// <summary>The whole buffer.</summary>
    public Act All => new(this, 0, Length);

    /// <summary>[offset, offset + length).</summary>
    public Act this[long offset, long length] => new(this, offset, length);

    public Span<float> Span(long offset, long length) =>
        _host.AsSpan(checked((int)offset), checked((int)length));

    public ArrayView<float> View(long offset, long length) =>
        _device!.View.AsContiguous().SubView(offset, length);

    public void Dispose() => _device?.Dispose();
}

/// <summary>A range of a <see cref="FloatBuffer"/>: a span on the host, a view on a device.
/// </summary>
internal readonly record struct Act(FloatBuffer Buffer, long Offset, long Length)
{
    public Span<float> Span => Buffer.Span(Offset, Length);

    public ArrayView<float> View => Buffer.View(Offset, Length);

    /// <summary>[start, start + length) of this range.</summary>
    public Act Slice(long start, long length) => new(Buffer, Offset + start, length);
}

/// <summary>Ints of a run state (token ids, positions) with a host copy that is uploaded
/// when the run is on a device.</summary>
internal sealed class IndexBuffer : IDisposable
{
    private readonly MemoryBuffer1D<int, Stride1D.Dense>? _device;

    public IndexBuffer(Accelerator? accelerator, int length)
    {
        Host = new int[Math.Max(1, length)];
        _device = accelerator?.Allocate1D<int>(Host.Length);
    }

    /// <summary>The host copy (always current).</summary>
    public int[] Host { get; }

    /// <summary>The first <paramref name="count"/> entries on the device, uploaded now.
    /// </summary>
    public ArrayView<int> Upload(int count)
    {
        var view = _device!.View.AsContiguous().SubView(0, Math.Max(1, count));
        StagedUpload.Copy(_device.Accelerator, Host.AsSpan(0, Math.Max(1, count)), view);
        return view;
    }

    public void Dispose() => _device?.Dispose();
}
