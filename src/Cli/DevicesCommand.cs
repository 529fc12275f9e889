using Managed.Kernels.Decode;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.TensorCores;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>Lists the devices; with a folder (`--ptx-out DIR`, never implied) also compiles every
/// variant to PTX into it (no device needed).</summary>
internal static class DevicesCommand
{
    public static int Run(string? ptxDir, bool probe, TextWriter output)
    {
        foreach (var device in ComputeDevice.List()) output.WriteLine(device);
        if (probe) Probe(output);
        if (ptxDir is null) return 0;
        Directory.CreateDirectory(ptxDir);
        // The linear layer's tensor-core GEMM, both block classes, and its rounding kernel.
        foreach (bool large in new[] { true, false })
        {
            string blocks = large ? "128" : "64";
            File.WriteAllText(Path.Combine(ptxDir, $"gemm-mma-half-{blocks}.ptx"),
                KernelCompiler.CompilePtx(MmaGemmMethods<TensorCoreHalf>.For(large).Gemm));
            File.WriteAllText(Path.Combine(ptxDir, $"gemm-mma-bf16-{blocks}.ptx"),
                KernelCompiler.CompilePtx(MmaGemmMethods<TensorCoreBFloat16>.For(large).Gemm));
        }
        File.WriteAllText(Path.Combine(ptxDir, "gemm-round-bf16.ptx"),
            KernelCompiler.CompilePtx(MmaGemmMethods<TensorCoreBFloat16>.Round));
        // Prefill on the tensor cores (first: the quickest to look at), causal, D = Dv = 64, 80, 96 and
        // 128, fp16 and bf16, groups of 4 warps (and 8, fp16).
        foreach (int dim in new[] { 64, 80, 96, 128, 256 })
        {
            File.WriteAllText(Path.Combine(ptxDir, $"prefill-mma-half-d{dim}.ptx"),
                KernelCompiler.CompilePtx(MmaPrefillMethods<System.Half, TensorCoreHalf, NoScore,
                    CausalMask, SoftmaxNormalizer, KeyRangeSchedule>.For(dim, dim)));
            File.WriteAllText(Path.Combine(ptxDir, $"prefill-mma-half-d{dim}-w8.ptx"),
                KernelCompiler.CompilePtx(MmaPrefillMethods<System.Half, TensorCoreHalf, NoScore,
                    CausalMask, SoftmaxNormalizer, KeyRangeSchedule>.For(dim, dim, 8)));
            File.WriteAllText(Path.Combine(ptxDir, $"prefill-mma-bf16-d{dim}.ptx"),
                KernelCompiler.CompilePtx(MmaPrefillMethods<BFloat16, TensorCoreBFloat16, NoScore,
                    CausalMask, SoftmaxNormalizer, KeyRangeSchedule>.For(dim, dim)));
        }
        // Prefill on the TF32 tensor cores (fp32 Q/K/V, AttentionPrecision.Tf32), causal,
        // D = Dv = 64, 80, 96 and 128.
        foreach (int dim in new[] { 64, 80, 96, 128 })
            File.WriteAllText(Path.Combine(ptxDir, $"prefill-mma-tf32-d{dim}.ptx"),
                KernelCompiler.CompilePtx(MmaTf32PrefillMethods<TensorCoreTf32, NoScore,
                    CausalMask, SoftmaxNormalizer, KeyRangeSchedule>.For(dim, dim)));
        var v = new PtxWriter(ptxDir);
        foreach (var variant in VariantRegistry.All) variant.DeviceTyped.Accept(v);
        // Decode of exact causal attention, for ptxas: D = 128 with 2 and 4 query vectors, 16
        // dims per lane (8 lanes per key) and 8 dims per lane (16 lanes per key).
        foreach (int vectors in new[] { 2, 4 })
            foreach (var (dims, lanes) in new[] { (16, 8), (8, 16) })
            {
                string shape = $"d128-v{vectors}-{dims}x{lanes}";
                File.WriteAllText(Path.Combine(ptxDir, $"decode-float-{shape}.ptx"),
                    KernelCompiler.CompilePtx(DecodeMethods<Float32Element, float, NoScore,
                        CausalMask, SoftmaxNormalizer>.Decode(dims, lanes, vectors, true, true)));
                File.WriteAllText(Path.Combine(ptxDir, $"decode-half-{shape}.ptx"),
                    KernelCompiler.CompilePtx(DecodeMethods<Float16Element, System.Half, NoScore,
                        CausalMask, SoftmaxNormalizer>.Decode(dims, lanes, vectors, true, true)));
            }
        // Decode on the tensor cores, D = Dv = 128, fp16 and bf16, vectors or keys as rows.
        foreach (var (rows, keyRows) in new[] { ("", false), ("-key-rows", true) })
        {
            File.WriteAllText(Path.Combine(ptxDir, $"decode-mma{rows}-half-d128.ptx"),
                KernelCompiler.CompilePtx(MmaDecodeMethods<Float16Element, System.Half,
                    TensorCoreHalf, NoScore, CausalMask, SoftmaxNormalizer>.Decode(128, 128,
                    keyRows)));
            File.WriteAllText(Path.Combine(ptxDir, $"decode-mma{rows}-bf16-d128.ptx"),
                KernelCompiler.CompilePtx(MmaDecodeMethods<BFloat16Element, BFloat16,
                    TensorCoreBFloat16, NoScore, CausalMask, SoftmaxNormalizer>.Decode(128, 128,
                    keyRows)));
        }
        // The chunked linear-attention kernels.
        foreach (var (name, method) in new[]
        {
            ("states", Managed.Kernels.LinearAttention.ChunkedLinearAttention.ChunkStatesMethod),
            ("scan", Managed.Kernels.LinearAttention.ChunkedLinearAttention.ScanStatesMethod),
            ("outputs", Managed.Kernels.LinearAttention.ChunkedLinearAttention.ChunkOutputsMethod),
        })
            File.WriteAllText(Path.Combine(ptxDir, $"linear-{name}.ptx"),
                KernelCompiler.CompilePtx(method));
        return 0;
    }

    /// <summary>Per ILGPU device: two device objects in turn, one causal call of a small shape
    /// on each, timed. The first call of the process compiles the kernel; the second device
    /// object loads the compiled code (a kernel cache shared by the process).</summary>
    private static void Probe(TextWriter output)
    {
        var shape = new AttentionShape(1, 4, 2, 128, 128, 64, 64);
        var rng = new Random(1);
        float[] q = BenchCommand.Fill(rng, shape.QueryLength),
            k = BenchCommand.Fill(rng, shape.KeyLength), v = BenchCommand.Fill(rng, shape.ValueLength);
        var first = new float[shape.OutputLength];
        var second = new float[shape.OutputLength];
        foreach (var info in ComputeDevice.List().Where(d => d.Kind != DeviceKind.Host))
        {
            double Call(float[] o)
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                using var device = ComputeDevice.Open(info.Kind, info.Index);
                FlashAttention.Forward(device, shape, q, k, v, o, default, new SoftcapScore(20f),
                    default(CausalMask), default(SoftmaxNormalizer));
                return clock.Elapsed.TotalMilliseconds;
            }
            double a = Call(first), b = Call(second);
            output.WriteLine($"{info.Kind}:{info.Index} open + first call {a:F0} ms; a second "
                + $"device object: {b:F0} ms; results {(first.SequenceEqual(second) ? "equal" : "DIFFER")}");
        }
    }

    private sealed class PtxWriter(string dir) : IVariantVisitor
    {
        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer
        {
            foreach (int dim in new[] { 64, 128, 256 })
                File.WriteAllText(Path.Combine(dir, $"{string.Concat(name.Select(ch => char.IsLetterOrDigit(ch) || ch == '-' ? ch : '_'))}-d{dim}.ptx"), KernelCompiler.CompilePtx<TScore, TMask, TNorm>(dim));
        }
    }
}
