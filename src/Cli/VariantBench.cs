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
/// `bench --variants`: FlexAttention-style variants at B=1, timed like exact attention, with
/// TFLOP/s counted on attended pairs only (4 H pairs D), the convention of FlexAttention's
/// published numbers; and each variant's speed-up over dense causal attention of the same shape,
/// timed in alternation with it (<see cref="Timer{T}.SpeedUp"/>) so that a shared machine's drift
/// between the two timings does not enter the ratio. With --dtype, Q, K and V are stored as each
/// type in turn (fp16 and bf16 on the tensor cores of a CUDA device where the kernels take them
/// there); the CSV's dtype column names it (float without --dtype).
/// </summary>
internal static class VariantBench
{
    /// <summary>The variants `bench --variants` times (canonical names): dense causal, then a
    /// causal window of 512, 4 sinks + a window of 512, causal documents of 1000 tokens,
    /// softcap 30 and ALiBi (slopes for the call's heads), all causal.</summary>
    public static IReadOnlyList<VariantSpec> DefaultSpecs { get; } =
    [
        new(MaskSpec.Causal),
        new(MaskSpec.CausalWindow(512)),
        new(MaskSpec.SinkWindow(4, 512)),
        new(MaskSpec.CausalDocuments(1000)),
        new(MaskSpec.Causal, ScoreSpec.Softcap(30f)),
        new(MaskSpec.Causal, ScoreSpec.Alibi()),
    ];

    /// <summary>The timed variants, bound for <paramref name="heads"/>; the first is the dense
    /// baseline of the "vs dense" column. <paramref name="chosen"/> (from --variant) follows
    /// dense causal, unless it starts with causal or full itself; without it,
    /// <see cref="DefaultSpecs"/>, and at N = 3136 (a 56 x 56 image) NATTEN's 2-D
    /// neighborhood attention with a 7 x 7 kernel instead.</summary>
    public static IReadOnlyList<IAttentionVariant> For(int heads, int n,
        IReadOnlyList<VariantSpec>? chosen = null)
    {
        if (chosen is null && n == 56 * 56)
            return
            [
                new VariantSpec(MaskSpec.None).Bind(heads),
                new AttentionVariant<NoScore, NeighborhoodMask2D>("na2d-56x56-k7", default,
                    new(new(56, 7), new(56, 7))),
            ];
        var dense = new VariantSpec(MaskSpec.Causal);
        IEnumerable<VariantSpec> specs = chosen is null ? DefaultSpecs
            : chosen[0] == dense || chosen[0] == new VariantSpec(MaskSpec.None) ? chosen
            : chosen.Prepend(dense);
        return specs.Select(spec => spec.Bind(heads)).ToArray();
    }

    public static int Run(CliOptions options, TextWriter output)
    {
        using var backend = ComputeDevice.Open(options.Device);
        output.WriteLine($"device: {backend.Name}");
        output.WriteLine($"{"variant",-22} {"dtype",-8} {"N",6} {"D",4} {"ms",10} {"TFLOP/s",8} "
            + $"{"vs dense",9}");
        using var csv = options.Output is null ? null : new StreamWriter(options.Output);
        csv?.WriteLine("variant,heads,seq,dim,ms,tflops_attended,speedup_vs_causal,dtype");
        foreach (var type in options.DTypes ?? [DType.Float])
            switch (type)
            {
                case DType.Half:
                    Shapes(backend, options, type, DTypeOps.ToHalf, output, csv);
                    break;
                case DType.BFloat16:
                    Shapes(backend, options, type, BFloat16.FromSingle, output, csv);
                    break;
                default: Shapes(backend, options, type, x => x, output, csv); break;
            }
        return 0;
    }

    /// <summary>The table for every --dim and --seq with Q, K and V stored as
    /// <typeparamref name="T"/> (rounded from the same floats in every type).</summary>
    private static void Shapes<T>(ComputeDevice backend, CliOptions options, DType type,
        Func<float, T> narrow, TextWriter output, StreamWriter? csv) where T : unmanaged
    {
        foreach (int d in options.Dim)
        foreach (int n in options.Seq)
        {
            var shape = AttentionShape.Self(options.Batch, options.Heads, n, d);
            var rng = new Random(1);
            // (batch, heads, seq, dim) each
            T[] q = DTypeOps.Narrow(BenchCommand.Fill(rng, shape.QueryLength), narrow),
                k = DTypeOps.Narrow(BenchCommand.Fill(rng, shape.KeyLength), narrow),
                v = DTypeOps.Narrow(BenchCommand.Fill(rng, shape.ValueLength), narrow);
            using var timer = new Timer<T>(backend, shape, q, k, v,
                new AttentionOptions { Tuning = options.Tuning });
            Action? dense = null;
            foreach (var variant in For(options.Heads, n, options.VariantSpecs))
            {
                variant.Accept(timer);
                double speedup = dense is null ? 1.0 : timer.SpeedUp(dense);
                dense ??= timer.Once;
                double tflops = 4.0 * shape.Batch * shape.Heads * timer.Pairs * d / timer.Ms / 1e9;
                output.WriteLine($"{variant.Name,-22} {type.Name(),-8} {n,6} {d,4} "
                    + $"{timer.Ms,10:F3} {tflops,8:F2} {speedup,9:F2}");
                csv?.WriteLine($"{variant.Name},{shape.Heads},{n},{d},{timer.Ms:F4},{tflops:F4},"
                    + $"{speedup:F3},{type.Name()}");
                csv?.Flush();
            }
        }
    }

    /// <summary>Times the variants of one shape (device-resident on ILGPU devices) with Q, K
    /// and V stored as <typeparamref name="T"/>, and counts their pairs; <see cref="Once"/> is
    /// one synchronized call of the last variant visited.</summary>
    private sealed class Timer<T> : IVariantVisitor, IDisposable where T : unmanaged
    {
        private readonly ComputeDevice backend;
        private readonly AttentionOptions opts;
        private readonly AttentionShape shape;
        private readonly T[] q, k, v;
        private readonly float[] o;
        private readonly MemoryBuffer1D<T, Stride1D.Dense>? dq, dk, dv;
        private readonly MemoryBuffer1D<float, Stride1D.Dense>? dout;

        public Timer(ComputeDevice backend, AttentionShape shape, T[] q, T[] k, T[] v,
            AttentionOptions opts)
        {
            (this.backend, this.shape, this.q, this.k, this.v) = (backend, shape, q, k, v);
            this.opts = opts;
            o = new float[shape.OutputLength];
            if (!backend.IsHost)
            {
                var acc = backend.Accelerator!;
                (dq, dk, dv) = (acc.Allocate1D(q), acc.Allocate1D(k), acc.Allocate1D(v));
                dout = acc.Allocate1D<float>(shape.OutputLength);
            }
        }

        public double Ms { get; private set; }
        public long Pairs { get; private set; }
        public Action Once { get; private set; } = () => { };

        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer
        {
            Pairs = CountPairs(mask, shape);
            if (!backend.IsHost)
            {
                Once = () =>
                {
                    FlashAttention.Forward<T, TScore, TMask, TNorm>(backend, shape, dq!.View,
                        dk!.View, dv!.View, dout!.View, default, score, mask, norm, opts);
                    backend.Synchronize();
                };
            }
            else
                Once = () => FlashAttention.Forward<T, TScore, TMask, TNorm>(backend, shape, q, k,
                    v, o, default, score, mask, norm, opts);
            Ms = BenchCommand.Time(Once, () => { }, 0.5);
        }

        /// <summary>
        /// dense / (the last variant visited), timed in alternation: 7 rounds of one call of
        /// <paramref name="dense"/> and the median of 3 calls of the variant, the median of the
        /// rounds' ratios. Timed apart (dense first, the variants seconds later), the ratio moved
        /// by up to 15 % between runs on the shared 2-core CPU; alternated, both sides see the
        /// same machine.
        /// </summary>
        public double SpeedUp(Action dense)
        {
            var ratios = new List<double>();
            var variant = new List<double>();
            for (int round = 0; round < 7; round++)
            {
                double denseMs = Call(dense);
                variant.Clear();
                for (int i = 0; i < 3; i++) variant.Add(Call(Once));
                variant.Sort();
                ratios.Add(denseMs / variant[1]);
            }
            ratios.Sort();
            return ratios[3];

            static double Call(Action once)
            {
                long t0 = Stopwatch.GetTimestamp();
                once();
                return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
        }

        public void Dispose()
        {
            dq?.Dispose(); dk?.Dispose(); dv?.Dispose(); dout?.Dispose();
        }
    }

    /// <summary>Allowed (query, key) pairs of head 0, batch 0, over 64 x 64 tiles: Full tiles
    /// count whole, Partial ones pair by pair (the masks here do not depend on the head).</summary>
    private static long CountPairs<TMask>(TMask mask, AttentionShape s) where TMask : struct, IMaskPredicate
    {
        long pairs = 0;
        int offset = s.QueryOffset(QueryAlignment.BottomRight);
        for (int q0 = 0; q0 < s.SeqQ; q0 += 64)
        for (int k0 = 0; k0 < s.SeqK; k0 += 64)
        {
            int q1 = Math.Min(q0 + 64, s.SeqQ), k1 = Math.Min(k0 + 64, s.SeqK);
            switch (mask.Classify(0, 0, q0 + offset, q1 + offset, k0, k1))
            {
                case TileKind.Full: pairs += (long)(q1 - q0) * (k1 - k0); break;
                case TileKind.Partial:
                    for (int i = q0; i < q1; i++)
                        for (int j = k0; j < k1; j++)
                            if (mask.Allows(0, 0, i + offset, j)) pairs++;
                    break;
            }
        }
        return pairs;
    }
}
