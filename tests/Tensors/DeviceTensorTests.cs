using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Xunit;
using Managed.Tensors;
using Managed.Tests.Support;

namespace Managed.Tests.Tensors;

/// <summary>Owns one ILGPU CPU-accelerator device for the device-tensor tests.</summary>
public sealed class DeviceTensorFixture : IDisposable
{
    public ComputeDevice Device { get; } = ComputeDevice.Open(DeviceKind.IlgpuCpu);
    public void Dispose() => Device.Dispose();
}

/// <summary>
/// Tensors in device memory (ILGPU's CPU accelerator here; the same code path as CUDA/OpenCL):
/// upload, download, views, attention without host round trips, release on Dispose.
/// </summary>
public class DeviceTensorTests(DeviceTensorFixture fixture) : IClassFixture<DeviceTensorFixture>
{
    private ComputeDevice Device => fixture.Device;

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    [Fact]
    public void UploadDownloadRoundTrips()
    {
        var data = Random(2 * 3 * 5, 1);
        using var host = NdTensor.FromArray(data, 2, 3, 5);
        using var dev = host.ToDevice(Device);
        Assert.False(dev.IsHost);
        Assert.Same(Device, dev.Device);
        using var back = dev.ToHost();
        Assert.Equal(data, back.AsSpan().ToArray());
    }

    [Fact]
    public void DeviceSliceAddressesTheParentsElements()
    {
        var data = Random(4 * 6, 2);
        using var dev = NdTensor.FromArray(data, 4, 6).ToDevice(Device);
        using var row = dev.Slice(2);
        var got = new float[6];
        row.CopyTo(got);
        Assert.Equal(data.AsSpan(12, 6).ToArray(), got);
        row.CopyFrom(new float[6]);            // write through the view
        var all = new float[24];
        dev.CopyTo(all);
        Assert.All(all.AsSpan(12, 6).ToArray(), x => Assert.Equal(0f, x));
        Assert.Equal(data.AsSpan(0, 12).ToArray(), all.AsSpan(0, 12).ToArray());
    }

    [Fact]
    public void AttentionOnDeviceTensorsEqualsTheHostKernel()
    {
        var shape = new AttentionShape(1, 4, 2, 37, 50, 16, 24);
        float[] q = Random((int)shape.QueryLength, 3), k = Random((int)shape.KeyLength, 4),
            v = Random((int)shape.ValueLength, 5);
        var expected = new float[shape.OutputLength];
        var expectedLse = new float[shape.LogSumExpLength];
        HostAttention.Forward(shape, q, k, v, expected, expectedLse, default(NoScore), default(CausalMask));

        using var dq = NdTensor.FromArray(q, 1, 4, 37, 16).ToDevice(Device);
        using var dk = NdTensor.FromArray(k, 1, 2, 50, 16).ToDevice(Device);
        using var dv = NdTensor.FromArray(v, 1, 2, 50, 24).ToDevice(Device);
        using var dout = NdTensor.Allocate(Device, 1, 4, 37, 24);
        using var dlse = NdTensor.Allocate(Device, 1, 4, 37);
        TensorAttention.Forward(dq, dk, dv, dout, dlse, default(NoScore), default(CausalMask),
            default(SoftmaxNormalizer));
        using var o = dout.ToHost();
        using var lse = dlse.ToHost();
        var got = o.AsSpan();
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(got[i] - expected[i]) <= 2e-6, $"o[{i}]");
        var gotLse = lse.AsSpan();
        for (int i = 0; i < expectedLse.Length; i++) Assert.True(Math.Abs(gotLse[i] - expectedLse[i]) <= 2e-6, $"lse[{i}]");
    }

    [Fact]
    public void MixedHostAndDeviceTensorsAreRejectedBeforeAnyWork()
    {
        using var dq = NdTensor.Allocate(Device, 1, 1, 4, 8);
        using var k = NdTensor.Allocate(1, 1, 4, 8);
        using var dv = NdTensor.Allocate(Device, 1, 1, 4, 8);
        using var dout = NdTensor.Allocate(Device, 1, 1, 4, 8);
        var e = Assert.Throws<ArgumentException>(() =>
            TensorAttention.Forward(dq, k, dv, dout, null, default(NoScore), default(NoMask),
                default(SoftmaxNormalizer)));
        Assert.Equal("k", e.ParamName);
    }

    [Fact]
    public void OverlappingDeviceOutputIsRejected()
    {
        using var all = NdTensor.Allocate(Device, 2, 1, 4, 8);
        using var q = all.Slice(0, 1);
        using var kv = NdTensor.Allocate(Device, 1, 1, 4, 8);
        var e = Assert.Throws<ArgumentException>(() =>
            TensorAttention.Forward(q, kv, kv, q, null, default(NoScore), default(NoMask),
                default(SoftmaxNormalizer)));
        Assert.Equal("output", e.ParamName);
    }

    [Fact]
    public void DisposeReleasesTheDeviceBufferAndViewsStopWorking()
    {
        var dev = NdTensor.Allocate(Device, 3, 4);
        var view = dev.Slice(1);
        dev.Dispose();
        dev.Dispose(); // idempotent
        Assert.True(dev.IsDisposed);
        Assert.True(view.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => view.CopyTo(new float[4]));
        Assert.Throws<ObjectDisposedException>(() => dev.ToHost());
    }
}
