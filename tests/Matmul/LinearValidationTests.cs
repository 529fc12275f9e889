using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;
using Managed.Kernels.Simd;
using Managed.Tests.Kernels;
using Xunit;

namespace Managed.Tests.Matmul;

/// <summary>
/// Every bad argument of <see cref="Linear"/> throws before anything is written (y keeps its
/// sentinel), naming the argument, and the message names the dimension: on the host and on
/// the ILGPU CPU accelerator (spans and views).
/// </summary>
public sealed class LinearValidationTests(IlgpuCpuFixture fixture)
    : IClassFixture<IlgpuCpuFixture>
{
    private const int M = 3, N = 5, K = 7;
    private const float Sentinel = 12345f;

    /// <summary>A call with one thing changed from a valid (3, 5, 7) call with bias, and
    /// the parameter name and message fragment the exception must carry.</summary>
    public sealed record Bad(string What, string Param, string Message, LinearShape Shape,
        int X = M * K, int W = N * K, int B = N, int Y = M * N, LinearOptions Options = default)
    {
        public override string ToString() => What;
    }

    private static readonly LinearShape Ok = new(M, N, K);

    public static TheoryData<bool, Bad> Cases()
    {
        Bad[] bad =
        [
            new("M zero", "shape", "M (rows of x)", Ok with { M = 0 }, X: 0, Y: 0),
            new("N negative", "shape", "N (output features)", Ok with { N = -1 }),
            new("K zero", "shape", "K (input features)", Ok with { K = 0 }, X: 0, W: 0),
            new("x short", "x", $"M {M} x K {K}", Ok, X: M * K - 1),
            new("weight long", "weight", $"N {N} x K {K}", Ok, W: N * K + 1),
            new("weight of another k", "weight", $"N {N} x K {K}", Ok, W: N * (K + 1)),
            new("bias short", "bias", $"N {N}", Ok, B: N - 1),
            new("y short", "y", $"M {M} x N {N}", Ok, Y: M * N - 1),
            new("threads zero", "options", "MaxDegreeOfParallelism", Ok,
                Options: new LinearOptions { MaxDegreeOfParallelism = 0 }),
            new("bad width", "options", "Simd", Ok,
                Options: new LinearOptions { Simd = (SimdWidth)9 }),
        ];
        var data = new TheoryData<bool, Bad>();
        foreach (bool ilgpu in new[] { false, true })
            foreach (var b in bad) data.Add(ilgpu, b);
        return data;
    }

    private ComputeDevice Device(bool ilgpu) =>
        ilgpu ? fixture.Backend.Device : ComputeDevice.Host;

    [Theory]
    [MemberData(nameof(Cases))]
    public void SpanCallThrowsBeforeWriting(bool ilgpu, Bad bad)
    {
        var y = Filled(bad.Y);
        var e = Assert.Throws<ArgumentException>(() => Linear.Forward<BFloat16>(Device(ilgpu),
            bad.Shape, new float[bad.X], new BFloat16[bad.W], new float[bad.B], y,
            bad.Options));
        Assert.Equal(bad.Param, e.ParamName);
        Assert.Contains(bad.Message, e.Message);
        Assert.All(y, v => Assert.Equal(Sentinel, v));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ViewCallThrowsBeforeWriting(bool ilgpu, Bad bad)
    {
        if (!ilgpu) return; // the host takes spans (HostRejectsViews)
        var acc = fixture.Backend.Device.Accelerator!;
        using var x = acc.Allocate1D<float>(Math.Max(1, bad.X));
        using var w = acc.Allocate1D<float>(Math.Max(1, bad.W));
        using var b = acc.Allocate1D<float>(Math.Max(1, bad.B));
        using var y = acc.Allocate1D(Filled(Math.Max(1, bad.Y)));
        var e = Assert.Throws<ArgumentException>(() => Linear.Forward<float>(Device(true),
            bad.Shape, x.View.SubView(0, bad.X), w.View.SubView(0, bad.W),
            b.View.SubView(0, bad.B), y.View.SubView(0, bad.Y), bad.Options));
        Assert.Equal(bad.Param, e.ParamName);
        Assert.Contains(bad.Message, e.Message);
        Assert.All(y.GetAsArray1D(), v => Assert.Equal(Sentinel, v));
    }

    /// <summary>y sharing memory with x, the (float) weights or the bias.</summary>
    [Theory]
    [InlineData(false, "x")]
    [InlineData(false, "weight")]
    [InlineData(false, "bias")]
    [InlineData(true, "x")]
    [InlineData(true, "weight")]
    [InlineData(true, "bias")]
    public void OverlappingOutputThrows(bool ilgpu, string input)
    {
        var memory = Filled(M * K + N * K + N + M * N);
        var all = memory.AsSpan();
        int at = input switch
        {
            "x" => M * K - 1, "weight" => M * K + N * K - 1, _ => M * K + N * K,
        };
        var e = Assert.Throws<ArgumentException>(() => Linear.Forward<float>(Device(ilgpu), Ok,
            memory.AsSpan(0, M * K), memory.AsSpan(M * K, N * K),
            memory.AsSpan(M * K + N * K, N), memory.AsSpan(at, M * N)));
        Assert.Equal("y", e.ParamName);
        Assert.All(memory, v => Assert.Equal(Sentinel, v));

        var acc = fixture.Backend.Device.Accelerator!;
        using var buffer = acc.Allocate1D(memory);
        var v = buffer.View;
        e = Assert.Throws<ArgumentException>(() => Linear.Forward<float>(Device(true), Ok,
            v.SubView(0, M * K), v.SubView(M * K, N * K), v.SubView(M * K + N * K, N),
            v.SubView(at, M * N)));
        Assert.Equal("y", e.ParamName);
        Assert.All(buffer.GetAsArray1D(), x => Assert.Equal(Sentinel, x));
    }

    [Fact]
    public void OtherArgumentsThrow()
    {
        var y = Filled(M * N);
        Assert.Throws<ArgumentNullException>(() => Linear.Forward<float>(null!, Ok,
            new float[M * K], new float[N * K], default, y));
        var e = Assert.Throws<ArgumentException>(() => Linear.Forward<double>(
            ComputeDevice.Host, Ok, new float[M * K], new double[N * K], default, y));
        Assert.Equal("weight", e.ParamName);
        Assert.Contains("Double", e.Message);
        var disposed = ComputeDevice.Open(DeviceKind.Host);
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Linear.Forward<float>(disposed, Ok,
            new float[M * K], new float[N * K], default, y));
        Assert.All(y, v => Assert.Equal(Sentinel, v));
    }

    [Fact]
    public void HostRejectsViews()
    {
        var acc = fixture.Backend.Device.Accelerator!;
        using var x = acc.Allocate1D<float>(M * K);
        using var w = acc.Allocate1D<float>(N * K);
        using var y = acc.Allocate1D<float>(M * N);
        var e = Assert.Throws<ArgumentException>(() => Linear.Forward<float>(ComputeDevice.Host,
            Ok, x.View, w.View, default, y.View));
        Assert.Equal("device", e.ParamName);
    }

    [Fact]
    public void ViewsOfAnotherAcceleratorThrow()
    {
        using var other = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        var mine = fixture.Backend.Device.Accelerator!;
        using var x = other.Accelerator!.Allocate1D<float>(M * K);
        using var w = mine.Allocate1D<float>(N * K);
        using var y = mine.Allocate1D(Filled(M * N));
        var e = Assert.Throws<ArgumentException>(() => Linear.Forward<float>(
            fixture.Backend.Device, Ok, x.View, w.View, default, y.View));
        Assert.Equal("x", e.ParamName);
        Assert.All(y.GetAsArray1D(), v => Assert.Equal(Sentinel, v));
    }

    private static float[] Filled(int n) => Enumerable.Repeat(Sentinel, n).ToArray();
}
