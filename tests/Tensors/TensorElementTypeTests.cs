using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;
using Managed.Tensors;
using Xunit;

namespace Managed.Tests.Tensors;

/// <summary>Tensors of float, Half and BFloat16 on the host and on a device: allocation,
/// typed spans, copies that keep the bits, conversion, and device-to-device copies.</summary>
public class TensorElementTypeTests
{
    private static float[] Data(int n) => Enumerable.Range(0, n)
        .Select(i => MathF.Sin(i * 0.37f) * (i % 5 == 0 ? 1e3f : 1f)).ToArray();

    [Theory]
    [InlineData(DataType.Float32, 4)]
    [InlineData(DataType.Float16, 2)]
    [InlineData(DataType.BFloat16, 2)]
    public void HostTensorsHoldTheirTypeAndSize(DataType type, int bytes)
    {
        using var t = NdTensor.Allocate(type, 3, 5);
        Assert.Equal(type, t.DataType);
        Assert.Equal(bytes, type.SizeInBytes());
        Assert.Equal(15, type switch
        {
            DataType.Float32 => t.AsSpan<float>().Length,
            DataType.Float16 => t.AsSpan<Half>().Length,
            _ => t.AsSpan<BFloat16>().Length,
        });
        if (type != DataType.Float32)
        {
            Assert.Throws<InvalidOperationException>(() => t.AsSpan());
            Assert.Throws<InvalidOperationException>(() => t.AsSpan<float>());
        }
    }

    [Fact]
    public void OnlyElementTypesAreAccepted()
    {
        Assert.Throws<ArgumentException>(() => NdTensor.FromArray(new int[4], 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => NdTensor.Allocate((DataType)9, 2));
    }

    [Fact]
    public void DeviceRoundTripKeepsTheBits()
    {
        using var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        var halves = Data(37).Select(x => (Half)x).ToArray();
        var bf = new BFloat16[37];
        ElementConvert.FromSingle(Data(37), bf);
        using var h = NdTensor.FromArray(halves, 37);
        using var b = NdTensor.FromArray(bf, 37);
        using var dh = h.ToDevice(device);
        using var db = b.ToDevice(device);
        Assert.Equal(DataType.Float16, dh.DataType);
        using var hh = dh.ToHost();
        using var hb = db.ToHost();
        Assert.Equal(halves, hh.AsSpan<Half>().ToArray());
        Assert.Equal(bf.Select(x => x.Bits), hb.AsSpan<BFloat16>().ToArray().Select(x => x.Bits));
    }

    [Fact]
    public void ACopyBetweenTwoDevicesKeepsTheElements()
    {
        using var a = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        using var b = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        var data = Data(50);
        using var host = NdTensor.FromArray(data, 5, 10);
        using var onA = host.ToDevice(a);
        using var onB = onA.ToDevice(b);
        Assert.Same(b, onB.Device);
        using var back = onB.ToHost();
        Assert.Equal(data, back.AsSpan().ToArray());
        a.Dispose();
        Assert.Throws<ObjectDisposedException>(() => onA.ToDevice(b));
    }

    [Theory]
    [InlineData(DataType.Float16)]
    [InlineData(DataType.BFloat16)]
    public void ConvertToRoundsLikeTheScalarConversions(DataType type)
    {
        var data = Data(70);
        using var f = NdTensor.FromArray(data, 7, 10);
        using var narrow = f.ConvertTo(type);
        using var wide = narrow.ConvertTo(DataType.Float32);
        using var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        using var onDevice = f.ToDevice(device);
        using var narrowOnDevice = onDevice.ConvertTo(type);
        Assert.Same(device, narrowOnDevice.Device);
        using var narrowBack = narrowOnDevice.ToHost();
        for (int i = 0; i < data.Length; i++)
        {
            float expected = type == DataType.Float16
                ? (float)(Half)data[i] : (float)(BFloat16)data[i];
            Assert.Equal(expected, wide.AsSpan()[i]);
            float fromDevice = type == DataType.Float16
                ? (float)narrowBack.AsSpan<Half>()[i] : (float)narrowBack.AsSpan<BFloat16>()[i];
            Assert.Equal(expected, fromDevice);
        }
    }

    [Fact]
    public void AttentionNamesANonFloatOutput()
    {
        using var q = NdTensor.Allocate(DataType.BFloat16, 1, 2, 4, 8);
        using var o = NdTensor.Allocate(DataType.BFloat16, 1, 2, 4, 8);
        var e = Assert.Throws<ArgumentException>(() => TensorAttention.Forward(q, q, q, o, null,
            default(NoScore), default(NoMask), default(SoftmaxNormalizer)));
        Assert.Equal("output", e.ParamName);
        Assert.Contains("BFloat16; expected Float32", e.Message);
    }
}
