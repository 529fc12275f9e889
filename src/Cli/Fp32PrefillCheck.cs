using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>
/// Exact attention over fp32 Q/K/V in dense head-major rows at each precision asked for
/// (<see cref="AttentionPrecision"/>; tf32 runs the TF32 tensor-core kernel on CUDA, the exact
/// kernels elsewhere): head dims 64, 96 (value dim 80) and 128 (value dims 128 and 64), GQA,
/// lengths off multiples of 64, full attention, causal top-left with ALiBi, and a softcapped
/// sliding window that skips most key tiles, each with its log-sum-exp, against the fp64
/// reference on the unrounded inputs. Pass rule: <see cref="CheckCommand"/>'s fp32 rule, plus
/// for tf32 the documented bound <see cref="FlashAttention.Tf32Bound"/> on the output and
/// <see cref="FlashAttention.Tf32LogitError"/> on the log-sum-exp, per row (Σ_d |q_d k_d| and
/// |v| bounded over all the row's keys, a superset of the allowed ones). On CUDA every layout of
/// the TF32 kernel runs (64 or 128 query rows, 1 or 2 stages). Each row prints the largest
/// error and the largest error over what the rule allows (pass: at most 1).
/// </summary>
internal static class Fp32PrefillCheck
{
    public static (int Checked, int Failed) Run(ComputeDevice device, TextWriter output,
        IReadOnlyList<AttentionPrecision> precisions)
    {
        int count = 0, failed = 0;
        var shapes = new[]
        {
            new AttentionShape(1, 8, 2, 1000, 1000, 64, 64),
            new AttentionShape(2, 4, 4, 300, 700, 128, 128),
            new AttentionShape(1, 4, 1, 500, 500, 96, 80),
            new AttentionShape(1, 4, 2, 257, 257, 128, 64),
        };
        // Every layout of the TF32 kernel (64 or 128 query rows, 1 or 2 stages) where the
        // device runs groups of 256 threads (CUDA); elsewhere the tuning does not apply.
        var layouts = device.Accelerator?.MaxNumThreadsPerGroup >= 256
            ? new[] { (64, 1), (64, 2), (128, 1), (128, 2) } : [(0, 0)];
        foreach (var shape in shapes)
        {
            var rng = new Random(shape.GetHashCode() & 0x7fff);
            float[] q = BenchCommand.Fill(rng, shape.QueryLength),
                k = BenchCommand.Fill(rng, shape.KeyLength),
                v = BenchCommand.Fill(rng, shape.ValueLength);
            double[] dots = MaxAbsDots(shape, q, k);
            double vmax = v.Max(Math.Abs);
            foreach (string variant in new[] { "full", "alibi-causal-top-left", "window-softcap" })
            {
                var reference = Reference(shape, variant, q, k, v);
                foreach (var precision in precisions)
                    foreach (var (rows, stages) in precision == AttentionPrecision.Tf32
                                 ? layouts : [(0, 0)])
                    {
                        var options = new AttentionOptions
                        {
                            Precision = precision,
                            Tuning = new AttentionTuning
                            {
                                TensorCoreRows = rows,
                                TensorCoreStages = stages,
                            },
                        };
                        count++;
                        if (!Case(device, shape, variant, options, q, k, v, reference, dots,
                                vmax, output))
                            failed++;
                    }
            }
        }
        return (count, failed);
    }

    /// <summary>The fp64 output and log-sum-exp of a variant.</summary>
    private static (double[] O, double[] Lse) Reference(AttentionShape s, string variant,
        float[] q, float[] k, float[] v) => variant switch
    {
        "full" => ReferenceAttention.Forward(s, q, k, v, default(NoScore), default(NoMask)),
        "alibi-causal-top-left" => ReferenceAttention.Forward(s, q, k, v,
            new AlibiScore(s.Heads), default(CausalMask),
            new AttentionOptions { Alignment = QueryAlignment.TopLeft }),
        _ => ReferenceAttention.Forward(s, q, k, v, new SoftcapScore(20f),
            SlidingWindowMask.Causal(100)),
    };

    private static bool Case(ComputeDevice device, AttentionShape s, string variant,
        AttentionOptions options, float[] q, float[] k, float[] v,
        (double[] O, double[] Lse) r, double[] dots, double vmax, TextWriter output)
    {
        var o = new float[s.OutputLength];
        var lse = new float[s.LogSumExpLength];
        switch (variant)
        {
            case "full":
                FlashAttention.Forward(device, s, q, k, v, o, lse, default(NoScore),
                    default(NoMask), default(SoftmaxNormalizer), options);
                break;
            case "alibi-causal-top-left":
                FlashAttention.Forward(device, s, q, k, v, o, lse, new AlibiScore(s.Heads),
                    default(CausalMask), default(SoftmaxNormalizer),
                    options with { Alignment = QueryAlignment.TopLeft });
                break;
            default:
                FlashAttention.Forward(device, s, q, k, v, o, lse, new SoftcapScore(20f),
                    SlidingWindowMask.Causal(100), default(SoftmaxNormalizer), options);
                break;
        }
        bool tf32 = options.Precision == AttentionPrecision.Tf32;
        double scale = options.ScaleFor(s.HeadDim);
        const double u = 1.0 / (1 << 24);
        double worst = 0, worstShare = 0;
        bool ok = true;
        for (int row = 0; row < lse.Length; row++)
        {
            double l = r.Lse[row];
            double logit = double.IsInfinity(l) ? 0 : Math.Abs(l) + Math.Log(s.SeqK) + 20;
            double extra = tf32 ? FlashAttention.Tf32Bound(scale, dots[row], vmax) : 0;
            for (int c = 0; c < s.ValueDim; c++)
            {
                int i = row * s.ValueDim + c;
                double e = r.O[i], err = Math.Abs(o[i] - e);
                double allowed = CheckCommand.Atol + 2 * u * logit * vmax + extra
                    + CheckCommand.Rtol * Math.Abs(e);
                Note(err, allowed, ref worst, ref worstShare, ref ok);
            }
            if (double.IsNegativeInfinity(l))
            {
                ok &= float.IsNegativeInfinity(lse[row]);
                continue;
            }
            double lseAllowed = CheckCommand.Atol + CheckCommand.Rtol * Math.Abs(l)
                + (tf32 ? FlashAttention.Tf32LogitError(scale, dots[row]) : 0);
            Note(Math.Abs(lse[row] - l), lseAllowed, ref worst, ref worstShare, ref ok);
        }
        var tuning = options.Tuning!;
        string layout = tuning.TensorCoreRows > 0
            ? $"/rows{tuning.TensorCoreRows}/stages{tuning.TensorCoreStages}" : "";
        string label = $"prefill-fp32/{variant}/{CliOptions.NameOf(options.Precision)}{layout}";
        output.WriteLine($"{label,-52} {device.Kind,-10} {s,-52} {worst,10:E2} "
            + $"{worstShare,10:F3}  {(ok ? "pass" : "FAIL")}");
        return ok;
    }

    /// <summary>Keeps the largest error and error / allowed; NaN fails.</summary>
    private static void Note(double err, double allowed, ref double worst,
        ref double worstShare, ref bool ok)
    {
        if (double.IsNaN(err)) { ok = false; return; }
        worst = Math.Max(worst, err);
        worstShare = Math.Max(worstShare, err / allowed);
        ok &= err <= allowed;
    }

    /// <summary>Per output row (batch, head, query): max over the keys of its KV head of
    /// Σ_d |q_d k_d|.</summary>
    private static double[] MaxAbsDots(AttentionShape s, float[] q, float[] k)
    {
        var dots = new double[s.LogSumExpLength];
        int d = s.HeadDim;
        Parallel.For(0, (int)s.LogSumExpLength, row =>
        {
            int bh = row / s.SeqQ, b = bh / s.Heads, h = bh % s.Heads;
            long kv = (long)(b * s.KvHeads + h / s.GroupSize) * s.SeqK * d;
            var qRow = q.AsSpan((int)((long)row * d), d);
            double best = 0;
            for (int j = 0; j < s.SeqK; j++)
            {
                var kRow = k.AsSpan((int)(kv + (long)j * d), d);
                double dot = 0;
                for (int x = 0; x < d; x++) dot += Math.Abs((double)qRow[x] * kRow[x]);
                best = Math.Max(best, dot);
            }
            dots[row] = best;
        });
        return dots;
    }
}
