using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;
using Managed.Kernels.Simd;
using Managed.Tests.Kernels;
using Xunit;
using Half = System.Half;

namespace Managed.Tests.Matmul;

/// <summary>
/// <see cref="Linear.Forward{TWeight}(ComputeDevice, LinearShape, ReadOnlySpan{float},
/// ReadOnlySpan{TWeight}, ReadOnlySpan{float}, Span{float}, LinearOptions)"/> against the fp64
/// reference on odd shapes (m on both sides of the GEMV / GEMM split; n and k off every
/// vector width, panel and tile), each weight type, with and without bias, on the host (each
/// SIMD width) and on the ILGPU CPU accelerator (spans staged, and device views).
/// </summary>
public sealed class LinearTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly ComputeDevice _ilgpu;

    public LinearTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Backend.Device;

    private static readonly (int N, int K)[] Sizes =
        [(1, 1), (3, 17), (17, 3), (129, 1000), (1000, 129)];

    public static TheoryData<int, int, int, WeightType, bool> Cases()
    {
        var data = new TheoryData<int, int, int, WeightType, bool>();
        int i = 0;
        // Host: GEMV up to 16 rows (4 per weight load: 7 and 16 run two and four groups),
        // GEMM above (17: a 5-row micro-tile; 130: two row blocks of 120).
        foreach (int m in new[] { 1, 2, 3, 4, 7, 16, 17, 65, 130 })
            foreach (var (n, k) in Sizes)
                foreach (var type in Enum.GetValues<WeightType>())
                    data.Add(m, n, k, type, i++ % 2 == 0);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void HostMatchesReference(int m, int n, int k, WeightType type, bool bias)
    {
        var c = new LinearCase(m, n, k, type, bias, seed: m * 7919 + n * 31 + k);
        Check(c, ComputeDevice.Host, default);
    }

    /// <summary>The 256- and 128-bit host kernels (the host picks 512 where it can).</summary>
    [Theory]
    [InlineData(SimdWidth.V256)]
    [InlineData(SimdWidth.V128)]
    public void NarrowSimdMatchesReference(SimdWidth width)
    {
        foreach (int m in new[] { 1, 3, 7, 17 })
            foreach (var (n, k) in Sizes)
                foreach (var type in Enum.GetValues<WeightType>())
                    Check(new LinearCase(m, n, k, type, bias: m != 3, seed: n + k + m),
                        ComputeDevice.Host, new LinearOptions { Simd = width });
    }

    /// <summary>One thread and many: the parts split the features, never a sum. Both shapes
    /// are above the serial threshold (2^21 multiply-adds): GEMV and GEMM run in parallel.
    /// </summary>
    [Fact]
    public void ThreadCountDoesNotChangeBits()
    {
        foreach (var (m, k) in new[] { (2, 1100), (130, 129) })
        {
            var c = new LinearCase(m, 1000, k, WeightType.BFloat16, bias: true, seed: m);
            var one = Run(c, ComputeDevice.Host, new LinearOptions { MaxDegreeOfParallelism = 1 });
            var many = Run(c, ComputeDevice.Host, new LinearOptions { MaxDegreeOfParallelism = 8 });
            Assert.Equal(one, many);
        }
    }

    /// <summary>The ILGPU CPU accelerator emulates every thread: the small shapes of
    /// <see cref="Cases"/>, then per type a GEMV over long rows and a GEMM crossing every tile
    /// edge (65 rows, 70 features, 33 inputs against 64 x 64 tiles 16 deep).</summary>
    public static TheoryData<int, int, int, WeightType, bool> IlgpuCases()
    {
        var data = new TheoryData<int, int, int, WeightType, bool>();
        int i = 0;
        foreach (int m in new[] { 1, 2, 3, 4, 7, 8, 9, 65 })
            foreach (var (n, k) in Sizes.Take(3))
                foreach (var type in Enum.GetValues<WeightType>())
                    data.Add(m, n, k, type, i++ % 2 == 0);
        foreach (var type in Enum.GetValues<WeightType>())
        {
            data.Add(1, 129, 1000, type, true);
            data.Add(4, 37, 300, type, false);
            data.Add(65, 70, 33, type, true);
            // 16-byte word loads (K a multiple of 8): a row longer than a warp's four words
            // in flight, one shorter than a warp, every row count up to 8.
            data.Add(1, 129, 1032, type, false);
            data.Add(8, 37, 264, type, true);
            data.Add(5, 70, 32, type, false);
            data.Add(6, 3, 8, type, true);
            // K a multiple of 4 only: words for float, elements for 16-bit types.
            data.Add(2, 33, 12, type, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(IlgpuCases))]
    public void IlgpuCpuMatchesReference(int m, int n, int k, WeightType type, bool bias)
    {
        var c = new LinearCase(m, n, k, type, bias, seed: m * 7919 + n * 31 + k);
        Check(c, _ilgpu, default);
    }

    /// <summary>Device views, weights uploaded once and called twice (kernels cached).
    /// </summary>
    [Fact]
    public void IlgpuViewsMatchReference()
    {
        var accelerator = _ilgpu.Accelerator!;
        foreach (int m in new[] { 1, 7 })
        {
            var c = new LinearCase(m, 33, 70, WeightType.BFloat16, bias: true, seed: m);
            using var x = accelerator.Allocate1D(c.X);
            using var w = accelerator.Allocate1D(c.BFloat16Weight!);
            using var b = accelerator.Allocate1D(c.Bias);
            using var y = accelerator.Allocate1D<float>(m * c.N);
            var shape = new LinearShape(m, c.N, c.K);
            Linear.Forward<BFloat16>(_ilgpu, shape, x.View, w.View, b.View, y.View);
            Linear.Forward<BFloat16>(_ilgpu, shape, x.View, w.View, b.View, y.View);
            c.Tolerance.AssertClose(y.GetAsArray1D(), c.Expected, "y", c);
        }
    }

    /// <summary>Views off the 16-byte grid (x and weights one element in) take the element
    /// loads; the same data at aligned views the word loads: both match the reference.
    /// </summary>
    [Fact]
    public void IlgpuViewsOffTheWordGridMatchReference()
    {
        var accelerator = _ilgpu.Accelerator!;
        foreach (int m in new[] { 1, 8 })
        {
            var c = new LinearCase(m, 19, 64, WeightType.BFloat16, bias: true, seed: 40 + m);
            foreach (int skip in new[] { 0, 1 })
            {
                using var x = accelerator.Allocate1D<float>(skip + c.X.Length);
                using var w = accelerator.Allocate1D<BFloat16>(skip + c.BFloat16Weight!.Length);
                using var b = accelerator.Allocate1D(c.Bias);
                using var y = accelerator.Allocate1D<float>(m * c.N);
                x.View.SubView(skip, c.X.Length).CopyFromCPU(c.X);
                w.View.SubView(skip, c.BFloat16Weight.Length)
                    .CopyFromCPU(c.BFloat16Weight);
                Linear.Forward<BFloat16>(_ilgpu, new LinearShape(m, c.N, c.K),
                    x.View.SubView(skip, c.X.Length),
                    w.View.SubView(skip, c.BFloat16Weight.Length), b.View, y.View);
                c.Tolerance.AssertClose(y.GetAsArray1D(), c.Expected, "y", $"{c} skip {skip}");
            }
        }
    }

    internal static void Check(LinearCase c, ComputeDevice device, LinearOptions options) =>
        c.Tolerance.AssertClose(Run(c, device, options), c.Expected, "y",
            $"{c} on {device.Kind} ({options.Simd})");

    internal static float[] Run(LinearCase c, ComputeDevice device, LinearOptions options)
    {
        var y = new float[c.M * c.N];
        var shape = new LinearShape(c.M, c.N, c.K);
        switch (c.Type)
        {
            case WeightType.Half:
                Linear.Forward<Half>(device, shape, c.X, c.HalfWeight, c.Bias, y, options);
                break;
            case WeightType.BFloat16:
                Linear.Forward<BFloat16>(device, shape, c.X, c.BFloat16Weight, c.Bias, y,
                    options);
                break;
            default:
                Linear.Forward<float>(device, shape, c.X, c.WideWeight, c.Bias, y, options);
                break;
        }
        return y;
    }
}
