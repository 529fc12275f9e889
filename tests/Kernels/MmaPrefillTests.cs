using System.Diagnostics;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Reference;
using Managed.Kernels.TensorCores;
using Managed.Kernels.Variants;
using Xunit;
using Half = System.Half;

namespace Managed.Tests.Kernels;

/// <summary>
/// The tensor-core prefill kernel (<see cref="MmaPrefillKernel"/>) with its mma, ldmatrix and
/// cp.async emulated on the ILGPU CPU accelerator (the kernel body CUDA runs), against the
/// fp64 reference on the same fp16/bf16-rounded inputs. Tolerance |o - ref| &lt;= atol +
/// rtol |ref|: S is exact products summed in fp32 (about 2^-24 D |q||k| relative), but P is
/// rounded to the 16-bit type before P V while the sum it is divided by is not, so each
/// output moves by at most u max|v| with u = 2^-11 (fp16) or 2^-8 (bf16) and |v| &lt;= 1 here:
/// atol is twice that. The log-sum-exp comes from fp32 weights: 1e-4. Shapes are small (the
/// emulation runs every mma as 32 lanes of shuffles): lengths off multiples of 64, GQA,
/// causal in both alignments, a sliding window that skips whole tiles, head dims 64, 96 and
/// 256, Dv != D. Run time (2-core CI-like host): 5-9 s per case once the process has compiled
/// one emulated tensor-core kernel; that first compile costs 40-120 s (measured: the emulated
/// decode kernel first took 43 s and this kernel then 9 s; this kernel first took 120 s), a
/// cost the decode tests' emulated kernels share in a full run.
/// </summary>
public sealed class MmaPrefillTests
{
    private const double LseTolerance = 1e-4, Rtol = 1e-3;

    public static TheoryData<string, string, int, int, int, int, int, int, int> Cases() => new()
    {
        // storage, variant, heads, kvHeads, seqQ, seqK, headDim, valueDim, query rows per
        // group (128 needs groups of 256 threads, which the CPU accelerator does not take:
        // those run in `check` on CUDA). Few groups: the CPU accelerator runs each group's
        // 128 threads as threads of the 2-core host.
        // Each distinct (storage, mask, score, dims) is a kernel the emulation compiles once
        // per process (the cost, 40-120 s each on the 2-core host), so the cases share them:
        // both alignments and GQA on one fp16 kernel at D 64; bf16 with a score modifier and
        // tile skipping; Dv != D at 96/80; the Q-in-shared path of D 256. D 128 (the same code
        // as 96 with more k-steps) runs on CUDA in `check` (prefill-16bit).
        { "half", "causal-top-left", 1, 1, 70, 70, 64, 64, 64 },
        { "half", "causal-bottom-right", 2, 1, 20, 100, 64, 64, 64 },
        { "bf16", "window-softcap", 1, 1, 40, 200, 64, 64, 64 },
        { "half", "causal-bottom-right", 1, 1, 40, 90, 96, 80, 64 },
        { "bf16", "causal-bottom-right", 1, 1, 20, 90, 256, 256, 64 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFp64OnRoundedInputs(string storage, string variant, int heads,
        int kvHeads, int seqQ, int seqK, int headDim, int valueDim, int rows)
    {
        var shape = new AttentionShape(1, heads, kvHeads, seqQ, seqK, headDim, valueDim);
        if (storage == "half")
            Run(shape, variant, x => (Half)x, x => (float)x, Math.Pow(2, -11), rows);
        else
            Run(shape, variant, BFloat16.FromSingle, BFloat16.ToSingle, Math.Pow(2, -8), rows);
    }

    private static void Run<T>(AttentionShape shape, string variant, Func<float, T> narrow,
        Func<T, float> widen, double unit, int rows) where T : unmanaged
    {
        var rng = new Random(shape.GetHashCode());
        T[] Data(long n) => Enumerable.Range(0, (int)n)
            .Select(_ => narrow((float)(rng.NextDouble() * 2 - 1))).ToArray();
        T[] q = Data(shape.QueryLength), k = Data(shape.KeyLength), v = Data(shape.ValueLength);
        var o = new float[shape.OutputLength];
        var lse = new float[shape.LogSumExpLength];
        var options = new AttentionOptions
        {
            EmulateTensorCores = true,
            Tuning = new AttentionTuning { TensorCoreRows = rows },
        };
        using var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        var clock = Stopwatch.StartNew();
        (double[] O, double[] Lse) reference;
        float[] qf = q.Select(widen).ToArray(), kf = k.Select(widen).ToArray(),
            vf = v.Select(widen).ToArray();
        switch (variant)
        {
            case "causal-top-left":
                options = options with { Alignment = QueryAlignment.TopLeft };
                FlashAttention.Forward<T, NoScore, CausalMask, SoftmaxNormalizer>(device, shape,
                    q, k, v, o, lse, default, default, default, options);
                reference = ReferenceAttention.Forward(shape, qf, kf, vf, default(NoScore),
                    default(CausalMask), options);
                AssertRan<T, NoScore, CausalMask>(shape);
                break;
            case "causal-bottom-right":
                FlashAttention.Forward<T, NoScore, CausalMask, SoftmaxNormalizer>(device, shape,
                    q, k, v, o, lse, default, default, default, options);
                reference = ReferenceAttention.Forward(shape, qf, kf, vf, default(NoScore),
                    default(CausalMask), options);
                AssertRan<T, NoScore, CausalMask>(shape);
                break;
            case "full":
                FlashAttention.Forward<T, NoScore, NoMask, SoftmaxNormalizer>(device, shape,
                    q, k, v, o, lse, default, default, default, options);
                reference = ReferenceAttention.Forward(shape, qf, kf, vf, default(NoScore),
                    default(NoMask), options);
                AssertRan<T, NoScore, NoMask>(shape);
                break;
            default: // window-softcap: 24 keys back from positions 160..199: tiles 0, 1 skipped
                var mask = SlidingWindowMask.Causal(24);
                var score = new SoftcapScore(5f);
                FlashAttention.Forward<T, SoftcapScore, SlidingWindowMask, SoftmaxNormalizer>(
                    device, shape, q, k, v, o, lse, score, mask, default, options);
                reference = ReferenceAttention.Forward(shape, qf, kf, vf, score, mask, options);
                AssertRan<T, SoftcapScore, SlidingWindowMask>(shape);
                break;
        }
        double atol = 2 * unit;
        for (int i = 0; i < o.Length; i++)
            Assert.True(Math.Abs(o[i] - reference.O[i]) <= atol + Rtol * Math.Abs(reference.O[i]),
                $"{variant} {typeof(T).Name} {shape}, output {i}: {o[i]} vs fp64 {reference.O[i]}");
        for (int i = 0; i < lse.Length; i++)
        {
            double r = reference.Lse[i];
            Assert.True(double.IsNegativeInfinity(r) ? float.IsNegativeInfinity(lse[i])
                    : Math.Abs(lse[i] - r) <= LseTolerance * (1 + Math.Abs(r)),
                $"{variant} {typeof(T).Name} {shape}, log-sum-exp {i}: {lse[i]} vs fp64 {r}");
        }
        Console.WriteLine($"{variant} {typeof(T).Name} {shape}: {clock.ElapsedMilliseconds} ms");
    }

    /// <summary>A key-tile schedule is followed: the two parts of a split (keys 0-127 and
    /// 128-199 of 4 tiles) merge into the whole, within the kernel's tolerance.</summary>
    [Fact]
    public void SplitScheduleMergesIntoTheWhole()
    {
        var shape = new AttentionShape(1, 1, 1, 30, 200, 64, 64);
        var rng = new Random(7);
        Half[] Data(long n) => Enumerable.Range(0, (int)n)
            .Select(_ => (Half)(rng.NextDouble() * 2 - 1)).ToArray();
        Half[] q = Data(shape.QueryLength), k = Data(shape.KeyLength), v = Data(shape.ValueLength);
        var options = new AttentionOptions { EmulateTensorCores = true };
        using var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        (float[] O, float[] Lse) Part(int part)
        {
            var o = new float[shape.OutputLength];
            var lse = new float[shape.LogSumExpLength];
            FlashAttention.Forward<Half, NoScore, CausalMask, SoftmaxNormalizer,
                KeySplitSchedule>(device, shape, q, k, v, o, lse, default, default, default,
                new KeySplitSchedule(part, 2), options);
            return (o, lse);
        }
        var (o0, lse0) = Part(0);
        var (o1, lse1) = Part(1);
        AttentionMerge.Merge(shape.ValueDim, o0, lse0, o1, lse1, o0, lse0);
        var (refO, refLse) = ReferenceAttention.Forward(shape, q.Select(x => (float)x).ToArray(),
            k.Select(x => (float)x).ToArray(), v.Select(x => (float)x).ToArray(),
            default(NoScore), default(CausalMask));
        for (int i = 0; i < o0.Length; i++)
            Assert.True(
                Math.Abs(o0[i] - refO[i]) <= 2 * Math.Pow(2, -11) + Rtol * Math.Abs(refO[i]),
                $"merged output {i}: {o0[i]} vs fp64 {refO[i]}");
        for (int i = 0; i < lse0.Length; i++)
            Assert.True(Math.Abs(lse0[i] - refLse[i]) <= LseTolerance * (1 + Math.Abs(refLse[i])),
                $"merged log-sum-exp {i}: {lse0[i]} vs fp64 {refLse[i]}");
        Assert.True(KernelCache.TimesCompiled(MmaPrefillMethods<Half, EmulatedHalf, NoScore,
            CausalMask, SoftmaxNormalizer, KeySplitSchedule>.For(64, 64)) > 0);
    }

    /// <summary>The call ran the emulated tensor-core kernel, not the fp32 fallback.</summary>
    private static void AssertRan<T, TScore, TMask>(AttentionShape shape)
        where T : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
    {
        var method = typeof(T) == typeof(Half)
            ? MmaPrefillMethods<T, EmulatedHalf, TScore, TMask, SoftmaxNormalizer,
                KeyRangeSchedule>.For(shape.HeadDim, shape.ValueDim)
            : MmaPrefillMethods<T, EmulatedBFloat16, TScore, TMask, SoftmaxNormalizer,
                KeyRangeSchedule>.For(shape.HeadDim, shape.ValueDim);
        Assert.True(KernelCache.TimesCompiled(method) > 0, "the tensor-core kernel did not run");
    }
}
