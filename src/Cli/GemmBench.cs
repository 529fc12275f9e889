using System.Globalization;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;
using Half = System.Half;

namespace Managed.Cli;

/// <summary>
/// `bench --gemm`: the linear layer's GEMM y = x W^T (x fp32 uniform in [-1, 1), W rounded
/// to each --dtype, no bias) for every --gemm-shapes and --linear-precision (default exact and
/// weight-type), TFLOP/s counted as 2 m n k. On an ILGPU device the tensors stay there and a
/// sample is 20 calls back to back and one synchronize (as PyTorch's peer is timed: CUDA
/// events around pipelined calls); medians (<see cref="BenchCommand.Time"/>). Every row is
/// checked first: 256 sampled outputs against fp64 on the unrounded x, within the documented
/// bound (<see cref="LinearPrecision"/>): k 2^-23 Σ|x w| for exact, plus u Σ|x w| (u = 2^-8
/// bf16, 2^-11 fp16; fp16 adds 2^-25 Σ|w|) for weight-type. The err/bound column is the worst
/// ratio; above 1 the row is marked FAIL and the command exits 1.
/// </summary>
internal static class GemmBench
{
    private const int Samples = 256, CallsPerSample = 20;

    public static int Run(CliOptions options, TextWriter output)
    {
        using var device = ComputeDevice.Open(options.Device);
        output.WriteLine($"device: {device.Name}");
        output.WriteLine($"{"dtype",-9} {"precision",-11} {"m",6} {"n",6} {"k",6} {"ms",9} "
            + $"{"TFLOP/s",8} {"err/bound",9}");
        using var csv = options.Output is null ? null : new StreamWriter(options.Output);
        csv?.WriteLine("m,n,k,dtype,precision,ms,tflops,err_over_bound,device");
        int failed = 0;
        foreach (var type in options.DTypes ?? [DType.BFloat16])
        foreach (var shape in options.GemmShapes ?? [new GemmShape(4096, 4096, 4096)])
        foreach (var precision in options.LinearPrecisions
            ?? [LinearPrecision.Exact, LinearPrecision.WeightType])
        {
            var rng = new Random(shape.GetHashCode());
            float[] x = BenchCommand.Fill(rng, (long)shape.M * shape.K);
            float[] w = BenchCommand.Fill(rng, (long)shape.N * shape.K);
            var opts = new LinearOptions
            {
                Precision = precision, TensorCoreRows = options.TensorCoreRows,
            };
            (double ms, double ratio) = type switch
            {
                DType.Half => Time(device, shape, x, DTypeOps.Narrow(w, DTypeOps.ToHalf),
                    h => (float)h, opts, Math.Pow(2, -11), Math.Pow(2, -25)),
                DType.BFloat16 => Time(device, shape, x, DTypeOps.Narrow(w, BFloat16.FromSingle),
                    BFloat16.ToSingle, opts, Math.Pow(2, -8), 0),
                _ => Time(device, shape, x, w, v => v, opts, 0, 0),
            };
            double tflops = 2.0 * shape.M * shape.N * shape.K / ms / 1e9;
            bool ok = ratio <= 1;
            if (!ok) failed++;
            string name = CliOptions.NameOf(precision);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{type.Name(),-9} {name,-11} {shape.M,6} {shape.N,6} {shape.K,6} {ms,9:F4} "
                + $"{tflops,8:F1} {ratio,9:F3}{(ok ? "" : " FAIL")}"));
            csv?.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{shape.M},{shape.N},{shape.K},{type.Name()},{name},{ms:F5},{tflops:F2},"
                + $"{ratio:F4},{device.Name.Replace(',', ' ')}"));
            csv?.Flush();
        }
        output.WriteLine(failed == 0 ? "check: every row within its bound"
            : $"check: {failed} rows FAILED");
        return failed == 0 ? 0 : 1;
    }

    /// <summary>Median ms of one call and the worst sampled error over its bound.</summary>
    private static (double Ms, double Ratio) Time<T>(ComputeDevice device,
        GemmShape s, float[] x, T[] w, Func<T, float> widen, LinearOptions options, double u,
        double subnormal) where T : unmanaged
    {
        var shape = new LinearShape(s.M, s.N, s.K);
        var y = new float[(long)s.M * s.N];
        double ms;
        if (device.IsHost)
        {
            ms = BenchCommand.Time(() => Linear.Forward<T>(device, shape, x, w, default, y,
                options), () => { });
        }
        else
        {
            var acc = device.Accelerator!;
            using var dx = acc.Allocate1D(x);
            using var dw = acc.Allocate1D(w);
            using var dy = acc.Allocate1D<float>(y.LongLength);
            ms = BenchCommand.Time(() => Linear.Forward<T>(device, shape, dx.View, dw.View,
                default, dy.View, options), acc.Synchronize, callsPerSample: CallsPerSample);
            dy.View.CopyToCPU(y);
        }
        bool rounded = options.Precision == LinearPrecision.WeightType
            && typeof(T) != typeof(float);
        var rng = new Random(7);
        double worst = 0;
        for (int sample = 0; sample < Samples; sample++)
        {
            int i = rng.Next(s.M), j = rng.Next(s.N);
            double exact = 0, magnitude = 0, weights = 0;
            for (int q = 0; q < s.K; q++)
            {
                double wq = widen(w[(long)j * s.K + q]), p = x[(long)i * s.K + q] * wq;
                exact += p;
                magnitude += Math.Abs(p);
                weights += Math.Abs(wq);
            }
            double bound = s.K * Math.Pow(2, -23) * magnitude
                + (rounded ? u * magnitude + subnormal * weights : 0) + 1e-30;
            double err = Math.Abs(y[(long)i * s.N + j] - exact);
            worst = Math.Max(worst, double.IsNaN(err) ? double.PositiveInfinity : err / bound);
        }
        return (ms, worst);
    }
}
