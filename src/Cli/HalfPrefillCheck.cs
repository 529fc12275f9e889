using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Cli;

/// <summary>
/// Exact attention over fp16 and bf16 Q/K/V in dense head-major rows, the tensor-core kernel's
/// domain on CUDA (elsewhere the fp32 kernels run them): head dims 64, 96 (value dim 80),
/// 128 and 256, GQA, lengths off multiples of 64, full attention, causal top-left with ALiBi, and a
/// softcapped sliding window that skips most key tiles, each with its log-sum-exp, against the
/// fp64 reference on the rounded inputs. Pass rule as <see cref="CheckCommand"/>'s with the
/// weights' rounding added (<see cref="FlashAttention.WeightRounding"/>).
/// </summary>
internal static class HalfPrefillCheck
{
    public static (int Checked, int Failed) Run(ComputeDevice device, TextWriter output,
        DType[] types)
    {
        int count = 0, failed = 0;
        var shapes = new[]
        {
            new AttentionShape(1, 8, 2, 1000, 1000, 64, 64),
            new AttentionShape(2, 4, 4, 300, 700, 128, 128),
            new AttentionShape(1, 4, 1, 500, 500, 96, 80),
            new AttentionShape(1, 4, 2, 300, 330, 256, 256),
        };
        // Both group sizes of the tensor-core kernel where the device runs groups of 256
        // threads (CUDA); elsewhere the tuning does not apply.
        int[] rowsPerGroup = device.Accelerator?.MaxNumThreadsPerGroup >= 256 ? [64, 128] : [0];
        foreach (var shape in shapes)
            foreach (string variant in new[] { "full", "alibi-causal-top-left", "window-softcap" })
                foreach (var type in types)
                    foreach (int rows in rowsPerGroup)
                    {
                        if (type == DType.Float) continue; // the variant table checks float
                        var tuning = new AttentionTuning { TensorCoreRows = rows };
                        bool ok = type == DType.Half
                            ? Case(device, shape, variant, DTypeOps.ToHalf, x => (float)x,
                                tuning, output)
                            : Case(device, shape, variant, BFloat16.FromSingle,
                                BFloat16.ToSingle, tuning, output);
                        count++;
                        if (!ok) failed++;
                    }
        return (count, failed);
    }

    private static bool Case<T>(ComputeDevice device, AttentionShape s, string variant,
        Func<float, T> narrow, Func<T, float> widen, AttentionTuning tuning, TextWriter output)
        where T : unmanaged
    {
        var rng = new Random(s.GetHashCode() & 0x7fff ^ variant.Length);
        T[] Data(long n) => Enumerable.Range(0, (int)n)
            .Select(_ => narrow((float)(rng.NextDouble() * 2 - 1))).ToArray();
        T[] q = Data(s.QueryLength), k = Data(s.KeyLength), v = Data(s.ValueLength);
        float[] qf = q.Select(widen).ToArray(), kf = k.Select(widen).ToArray(),
            vf = v.Select(widen).ToArray();
        var o = new float[s.OutputLength];
        var lse = new float[s.LogSumExpLength];
        (double[] O, double[] Lse) r;
        switch (variant)
        {
            case "full":
                FlashAttention.Forward<T, NoScore, NoMask, SoftmaxNormalizer>(device, s, q, k, v,
                    o, lse, default, default, default, new AttentionOptions { Tuning = tuning });
                r = ReferenceAttention.Forward(s, qf, kf, vf, default(NoScore), default(NoMask));
                break;
            case "alibi-causal-top-left":
                var options = new AttentionOptions
                {
                    Alignment = QueryAlignment.TopLeft,
                    Tuning = tuning,
                };
                var alibi = new AlibiScore(s.Heads);
                FlashAttention.Forward<T, AlibiScore, CausalMask, SoftmaxNormalizer>(device, s,
                    q, k, v, o, lse, alibi, default, default, options);
                r = ReferenceAttention.Forward(s, qf, kf, vf, alibi, default(CausalMask),
                    options);
                break;
            default:
                var window = SlidingWindowMask.Causal(100);
                var cap = new SoftcapScore(20f);
                FlashAttention.Forward<T, SoftcapScore, SlidingWindowMask, SoftmaxNormalizer>(
                    device, s, q, k, v, o, lse, cap, window, default,
                    new AttentionOptions { Tuning = tuning });
                r = ReferenceAttention.Forward(s, qf, kf, vf, cap, window);
                break;
        }
        var (abs, _, okO) = CheckCommand.CompareOutput(o, r.O, r.Lse, s, vf,
            weightRounding: FlashAttention.WeightRounding<T>(device, s));
        var (absL, _, okL) = CheckCommand.Compare(lse, r.Lse);
        bool ok = okO && okL;
        string type = typeof(T) == typeof(Half) ? "half" : "bfloat16";
        string rows = tuning.TensorCoreRows > 0 ? $"/rows{tuning.TensorCoreRows}" : "";
        output.WriteLine($"{$"prefill-16bit/{variant}/{type}{rows}",-44} {device.Kind,-10} {s,-52} "
            + $"{Math.Max(abs, absL),10:E2}  {(ok ? "pass" : "FAIL")}");
        return ok;
    }
}
