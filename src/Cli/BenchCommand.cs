using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>
/// Times exact attention, dense and causal, and prints TFLOP/s counted as 4 B Hq Nq Nk D,
/// halved for causal. One warm-up call (compiles the kernel), then timed calls until a second
/// has passed (at least 3). On ILGPU devices the tensors stay on the device and every timed
/// call ends with a synchronize; on the CPU the spans are the host arrays. With --dtype, Q, K
/// and V are stored as each type in turn (half and bfloat16 run on the tensor cores of a CUDA
/// device where <c>FlashAttention</c> takes them there) and the CSV gets a storage column; with
/// --precision, fp32 Q/K/V run at each precision in turn (tf32 on the TF32 tensor cores of a
/// CUDA device) and the CSV gets a precision column.
/// </summary>
internal static class BenchCommand
{
    public static int Run(CliOptions options, TextWriter output)
    {
        using var backend = ComputeDevice.Open(options.Device);
        var common = new AttentionOptions { Tuning = options.Tuning };
        output.WriteLine(options.Reference ? "fp64 reference (ReferenceAttention), one run" : $"device: {backend.Name}");
        output.WriteLine($"{"shape",-50} {"causal",6} {"ms",10} {"TFLOP/s",9}");
        using var csv = options.Output is null ? null : new StreamWriter(options.Output);
        bool storageColumn = options.DTypes is not null;
        bool precisionColumn = options.Precisions is not null;
        csv?.WriteLine("batch,heads,seq,dim,causal,ms,tflops"
            + (storageColumn ? ",storage" : "") + (precisionColumn ? ",precision" : ""));
        foreach (var type in options.DTypes ?? [DType.Float])
        foreach (var precision in options.Precisions ?? [AttentionPrecision.Exact])
        foreach (int d in options.Dim)
        foreach (int n in options.Seq)
        foreach (bool causal in new[] { false, true })
        {
            var shape = AttentionShape.Self(options.Batch, options.Heads, n, d);
            var rng = new Random(1);
            float[] q = Fill(rng, shape.QueryLength), k = Fill(rng, shape.KeyLength), v = Fill(rng, shape.ValueLength);
            var opts = common with { Precision = precision };
            double ms = options.Reference ? TimeReference(shape, q, k, v, causal)
                : type switch
                {
                    DType.Half => Time(backend, shape, DTypeOps.Narrow(q, DTypeOps.ToHalf),
                        DTypeOps.Narrow(k, DTypeOps.ToHalf), DTypeOps.Narrow(v, DTypeOps.ToHalf),
                        causal, opts),
                    DType.BFloat16 => Time(backend, shape,
                        DTypeOps.Narrow(q, BFloat16.FromSingle),
                        DTypeOps.Narrow(k, BFloat16.FromSingle),
                        DTypeOps.Narrow(v, BFloat16.FromSingle), causal, opts),
                    _ => Time(backend, shape, q, k, v, causal, opts),
                };
            double flops = 4.0 * shape.Batch * shape.Heads * n * (double)n * d * (causal ? 0.5 : 1.0);
            double tflops = flops / ms / 1e9;
            string name = CliOptions.NameOf(precision);
            string label = (storageColumn ? $"{type.Name()} " : "")
                + (precisionColumn ? $"{name} " : "");
            output.WriteLine($"{label}{shape,-50} {causal,6} {ms,10:F3} {tflops,9:F3}");
            csv?.WriteLine($"{shape.Batch},{shape.Heads},{n},{d},{causal},{ms:F4},{tflops:F4}"
                + (storageColumn ? $",{type.Name()}" : "") + (precisionColumn ? $",{name}" : ""));
        }
        return 0;
    }

    /// <summary>Median ms of one call with Q, K and V stored as <typeparamref name="T"/>: on
    /// the host's spans, or device-resident on an ILGPU device.</summary>
    private static double Time<T>(ComputeDevice backend, AttentionShape shape, T[] q, T[] k,
        T[] v, bool causal, AttentionOptions opts) where T : unmanaged
    {
        if (!backend.IsHost) return TimeDevice(backend, shape, q, k, v, causal, opts);
        var o = new float[shape.OutputLength];
        void Once()
        {
            if (causal) FlashAttention.Forward<T, NoScore, CausalMask, SoftmaxNormalizer>(backend,
                shape, q, k, v, o, default, default, default, default, opts);
            else FlashAttention.Forward<T, NoScore, NoMask, SoftmaxNormalizer>(backend, shape,
                q, k, v, o, default, default, default, default, opts);
        }
        return Time(Once, () => { });
    }

    /// <summary>The fp64 reference (naive, one row of scores at a time), for scale.</summary>
    private static double TimeReference(AttentionShape shape, float[] q, float[] k, float[] v, bool causal)
    {
        void Once()
        {
            if (causal) ReferenceAttention.Forward(shape, q, k, v, default(NoScore), default(CausalMask));
            else ReferenceAttention.Forward(shape, q, k, v, default(NoScore), default(NoMask));
        }
        var sw = Stopwatch.StartNew();
        Once();
        return sw.Elapsed.TotalMilliseconds;
    }

    private static double TimeDevice<T>(ComputeDevice gpu, AttentionShape shape, T[] q,
        T[] k, T[] v, bool causal, AttentionOptions opts) where T : unmanaged
    {
        var acc = gpu.Accelerator!;
        using var dq = acc.Allocate1D(q);
        using var dk = acc.Allocate1D(k);
        using var dv = acc.Allocate1D(v);
        using var dout = acc.Allocate1D<float>(shape.OutputLength);
        void Once()
        {
            if (causal) FlashAttention.Forward<T, NoScore, CausalMask, SoftmaxNormalizer>(gpu,
                shape, dq.View, dk.View, dv.View, dout.View, default, default, default, default,
                opts);
            else FlashAttention.Forward<T, NoScore, NoMask, SoftmaxNormalizer>(gpu, shape,
                dq.View, dk.View, dv.View, dout.View, default, default, default, default, opts);
        }
        return Time(Once, acc.Synchronize);
    }

    /// <summary>Median ms of <paramref name="once"/> + <paramref name="sync"/> after one warm-up
    /// call (which compiles the kernel), over at least 5 calls and <paramref name="seconds"/>:
    /// the median, because on a shared machine a few calls run slow (the 2-core CPU here showed
    /// +-8 % between means of the same call). With <paramref name="callsPerSample"/> above 1,
    /// each sample is that many calls back to back and one sync, divided by the count: the
    /// device's time per call with launches pipelined, as a decode loop runs them and as
    /// PyTorch's peers are timed (CUDA events around 20 calls).</summary>
    internal static double Time(Action once, Action sync, double seconds = 1.0,
        int callsPerSample = 1)
    {
        once(); sync();
        var total = Stopwatch.StartNew();
        var times = new List<double>();
        do
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int c = 0; c < callsPerSample; c++) once();
            sync();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds / callsPerSample);
        } while ((total.Elapsed.TotalSeconds < seconds || times.Count < 5) && times.Count < 200);
        times.Sort();
        int n = times.Count;
        return n % 2 == 1 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    }

    /// <summary><paramref name="n"/> values uniform in [-1, 1).</summary>
    internal static float[] Fill(Random rng, long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }
}
