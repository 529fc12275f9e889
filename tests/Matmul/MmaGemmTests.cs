using System.Diagnostics;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;
using Managed.Kernels.TensorCores;
using Managed.Tests.Kernels;
using Xunit;

namespace Managed.Tests.Matmul;

/// <summary>
/// <see cref="LinearPrecision.WeightType"/>: the tensor-core GEMM (<see cref="MmaGemmKernel"/>)
/// with its mma, ldmatrix and cp.async emulated on the ILGPU CPU accelerator (the kernel body
/// CUDA runs), against fp64 on x rounded to bf16 (round to nearest even, written here
/// independently of the library) and the bf16 weights; and the default,
/// <see cref="LinearPrecision.Exact"/>, leaving every other call as it was. One emulated run
/// (its first compile costs tens of seconds on a 2-core host): the 64 x 64 block class (the
/// CPU accelerator takes no 256-thread groups; the 128 x 128 class runs in the GPU bench's
/// check and compiles in <see cref="MmaGemmKernelCompileTests"/>).
/// </summary>
public sealed class MmaGemmTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly ComputeDevice _ilgpu;

    public MmaGemmTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Backend.Device;

    /// <summary>m 67 and n 75 odd (two block rows and columns of 64, both partial), k 200: 25
    /// chunks of 8, so 4 k tiles of 64 (the 3-stage ring wraps; the last tile holds one chunk).
    /// Tolerance: the documented fp32 term k 2^-23 Σ|x̂ w| (the x rounding is in the reference):
    /// about 1e-3 here, while x left unrounded moves y by about 2^-9 Σ|x w| (0.1) and a wrong
    /// fragment by O(1).</summary>
    [Fact]
    public void EmulatedMatchesFp64OnRoundedInputs()
    {
        const int m = 67, n = 75, k = 200;
        var c = new LinearCase(m, n, k, WeightType.BFloat16, bias: true, seed: 14);
        var rounded = c.X.Select(RoundToBFloat16).ToArray();
        var shape = new LinearShape(m, n, k);
        var y = new float[m * n];
        var options = new LinearOptions
        {
            Precision = LinearPrecision.WeightType, EmulateTensorCores = true,
        };
        using var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        var clock = Stopwatch.StartNew();
        Linear.Forward<BFloat16>(device, shape, c.X, c.BFloat16Weight!, c.Bias, y, options);
        Console.WriteLine($"emulated tensor-core GEMM {c}: {clock.ElapsedMilliseconds} ms");
        Assert.True(device.Kernels.IsLoaded(MmaGemmMethods<EmulatedBFloat16>.Small));
        int far = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double exact = c.Bias[j], magnitude = Math.Abs(c.Bias[j]);
                for (int q = 0; q < k; q++)
                {
                    double product = (double)rounded[i * k + q] * c.WideWeight[j * k + q];
                    exact += product;
                    magnitude += Math.Abs(product);
                }
                double got = y[i * n + j], bound = k * Math.Pow(2, -23) * magnitude + 1e-7;
                Assert.True(Math.Abs(got - exact) <= bound,
                    $"{c}: y[{i}, {j}] = {got} vs fp64 on rounded x {exact} (bound {bound})");
                // The rounding happened: fp64 on the unrounded x is usually farther away.
                if (Math.Abs(got - c.Expected[i * n + j]) > bound) far++;
            }
        Assert.True(far > m * n / 2, $"{far} of {m * n} outputs differ from exact x's");
    }

    /// <summary>The default precision and WeightType where it does not apply (the ILGPU CPU
    /// accelerator without emulation, GEMV rows, the host, fp32 weights, k not a multiple of
    /// 8) give the exact kernels' results bit for bit, and the tensor-core kernel is never
    /// loaded.</summary>
    [Fact]
    public void DefaultAndInapplicableWeightTypeAreExact()
    {
        var weightType = new LinearOptions { Precision = LinearPrecision.WeightType };
        foreach (int m in new[] { 3, 20 })
        {
            var c = new LinearCase(m, 33, 64, WeightType.BFloat16, bias: true, seed: m);
            var f = new LinearCase(m, 33, 64, WeightType.Float, bias: false, seed: m);
            var shape = new LinearShape(m, c.N, c.K);
            foreach (var device in new[] { _ilgpu, ComputeDevice.Host })
            {
                float[] Run(LinearCase lc, LinearOptions o)
                {
                    var y = new float[m * lc.N];
                    if (lc.Type == WeightType.Float)
                        Linear.Forward<float>(device, shape, lc.X, lc.WideWeight, lc.Bias, y, o);
                    else
                        Linear.Forward<BFloat16>(device, shape, lc.X, lc.BFloat16Weight!,
                            lc.Bias, y, o);
                    return y;
                }
                Assert.Equal(Run(c, default), Run(c, weightType));
                Assert.Equal(Run(f, default), Run(f, weightType));
                c.Tolerance.AssertClose(Run(c, default), c.Expected, "y", c);
            }
        }
        // k not a multiple of 8 (no whole 16-byte chunks per row): the exact kernels, even
        // with the emulation asked for.
        var odd = new LinearCase(20, 33, 41, WeightType.BFloat16, bias: true, seed: 41);
        var emulated = weightType with { EmulateTensorCores = true };
        var yDefault = new float[20 * 33];
        var yOdd = new float[20 * 33];
        var oddShape = new LinearShape(20, 33, 41);
        Linear.Forward<BFloat16>(_ilgpu, oddShape, odd.X, odd.BFloat16Weight!, odd.Bias,
            yDefault);
        Linear.Forward<BFloat16>(_ilgpu, oddShape, odd.X, odd.BFloat16Weight!, odd.Bias, yOdd,
            emulated);
        Assert.Equal(yDefault, yOdd);
        Assert.False(_ilgpu.Kernels.IsLoaded(MmaGemmMethods<EmulatedBFloat16>.Small));
        Assert.False(_ilgpu.Kernels.IsLoaded(MmaGemmMethods<EmulatedBFloat16>.Large));
    }

    [Fact]
    public void UndefinedPrecisionIsRefused()
    {
        var c = new LinearCase(20, 8, 8, WeightType.BFloat16, bias: false, seed: 1);
        var y = new float[20 * 8];
        var e = Assert.Throws<ArgumentException>(() => Linear.Forward<BFloat16>(
            ComputeDevice.Host, new LinearShape(20, 8, 8), c.X, c.BFloat16Weight!, c.Bias, y,
            new LinearOptions { Precision = (LinearPrecision)7 }));
        Assert.Contains("Precision", e.Message);
        Assert.All(y, v => Assert.Equal(0f, v));
    }

    /// <summary>x rounded to bf16, nearest even (finite x).</summary>
    private static float RoundToBFloat16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        bits += 0x7FFFu + ((bits >> 16) & 1);
        return BitConverter.UInt32BitsToSingle(bits & 0xFFFF_0000u);
    }
}
