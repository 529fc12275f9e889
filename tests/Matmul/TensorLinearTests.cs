using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;
using Managed.Tensors;
using Managed.Tests.Kernels;
using Xunit;

namespace Managed.Tests.Matmul;

/// <summary><see cref="TensorLinear"/> equals <see cref="Linear"/> on the same spans bit for
/// bit (host tensors, the weight tensor in its stored type), runs device-resident on the
/// ILGPU CPU accelerator, and names the tensor and dimension of a bad call.</summary>
public sealed class TensorLinearTests(IlgpuCpuFixture fixture) : IClassFixture<IlgpuCpuFixture>
{
    [Theory]
    [InlineData(WeightType.Float)]
    [InlineData(WeightType.Half)]
    [InlineData(WeightType.BFloat16)]
    public void HostTensorsEqualSpans(WeightType type)
    {
        var c = new LinearCase(6, 19, 33, type, bias: true, seed: 5);
        var expected = LinearTests.Run(c, ComputeDevice.Host, default);
        using var x = NdTensor.FromArray(c.X, 2, 3, c.K);       // (batch, seq, k)
        using var w = Weight(c);                                 // (n, k)
        using var b = NdTensor.FromArray(c.Bias, c.N);
        using var y = NdTensor.Allocate(2, 3, c.N);
        TensorLinear.Forward(x, w, b, y);
        Assert.Equal(expected, y.AsSpan().ToArray());
    }

    [Fact]
    public void DeviceTensorsMatchReference()
    {
        var device = fixture.Backend.Device;
        foreach (int m in new[] { 1, 6 })
        {
            var c = new LinearCase(m, 19, 33, WeightType.BFloat16, bias: false, seed: m);
            using var x = NdTensor.FromArray(c.X, m, c.K).ToDevice(device);
            using var hostW = Weight(c);
            using var w = hostW.ToDevice(device);
            using var y = NdTensor.Allocate(device, m, c.N);
            TensorLinear.Forward(x, w, null, y);
            using var result = y.ToHost();
            c.Tolerance.AssertClose(result.AsSpan(), c.Expected, "y", c);
        }
    }

    [Fact]
    public void BadTensorsThrowNamingTheTensor()
    {
        using var x = NdTensor.Allocate(2, 8);
        using var w = NdTensor.Allocate(DataType.BFloat16, 5, 8);
        using var y = NdTensor.Allocate(2, 5);
        using var wrongK = NdTensor.Allocate(2, 7);
        using var wrongN = NdTensor.Allocate(2, 4);
        using var halfX = NdTensor.Allocate(DataType.Float16, 2, 8);
        using var bias = NdTensor.Allocate(4);
        AssertBad("x", "(k)", () => TensorLinear.Forward(wrongK, w, null, y));
        AssertBad("output", "(n)", () => TensorLinear.Forward(x, w, null, wrongN));
        AssertBad("x", "Float16", () => TensorLinear.Forward(halfX, w, null, y));
        AssertBad("bias", "(n)", () => TensorLinear.Forward(x, w, bias, y));
        AssertBad("x", "contiguous",
            () => TensorLinear.Forward(x.Transpose(0, 1), w, null, y));
        using var inX = x.Reshape(16).Narrow(0, 3, 10).Reshape(2, 5);
        AssertBad("output", "overlaps", () => TensorLinear.Forward(x, w, null, inX));
        using var onDevice = y.ToDevice(fixture.Backend.Device);
        AssertBad("output", "host", () => TensorLinear.Forward(x, w, null, onDevice));
    }

    private static void AssertBad(string param, string fragment, Action call)
    {
        var e = Assert.Throws<ArgumentException>(call);
        Assert.Equal(param, e.ParamName);
        Assert.Contains(fragment, e.Message);
    }

    private static NdTensor Weight(LinearCase c) => c.Type switch
    {
        WeightType.Half => NdTensor.FromArray(c.HalfWeight!, c.N, c.K),
        WeightType.BFloat16 => NdTensor.FromArray(c.BFloat16Weight!, c.N, c.K),
        _ => NdTensor.FromArray(c.WideWeight, c.N, c.K),
    };
}
