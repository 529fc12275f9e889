using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit.Sdk;

namespace Managed.Tests.Kernels;

// The kernel against the fp64 reference: every variant, large logits, fully masked rows.
public abstract partial class AttentionPropertiesBase
{
    /// <summary>fp32 unit roundoff, 2^-24.</summary>
    private const double Unit = 5.960464477539063e-8;

    [Property(MaxTest = 200)]
    public Property KernelMatchesReferenceForEveryVariant() =>
        Prop.ForAll(Cases, c =>
        {
            foreach (var variant in VariantRegistry.All)
            {
                var result = AttentionRun.Run(Backend, variant, c);
                var (output, lse) = variant.Reference(c.Shape, c.Query, c.Key, c.Value, c.Options);
                var context = $"{variant.Name}: {c}";
                Tolerance.Kernel.AssertClose(result.Output, output, "output", context);
                if (VariantFacts.LogSumExpWellConditioned(variant))
                    Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", context);
            }
        });

    /// <summary>
    /// The registry fixes one parameter per modifier (ALiBi for 8 heads: exact power-of-two
    /// slopes; soft-cap 30). Other parameters must match the reference too: ALiBi for
    /// 3 * heads (slopes not powers of two) and caps from 2 to 1000, with Scale 4/sqrt(D) so
    /// logits reach ~10 and the cap matters. Same tolerance as the registry property.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property OtherModifierParametersMatchReference() =>
        Prop.ForAll(Cases, Gen.Elements(2f, 30f, 1000f).ToArbitrary(), (c, cap) =>
        {
            var options = c.Options with { Scale = 4f / MathF.Sqrt(c.Shape.HeadDim) };
            bool causal = c.Variant % 2 == 1;
            IAttentionVariant variant = (c.Variant / 2 % 2, causal) switch
            {
                (0, false) => new AttentionVariant<AlibiScore, NoMask>("alibi-3H", new(3 * c.Shape.Heads), default),
                (0, true) => new AttentionVariant<AlibiScore, CausalMask>("alibi-3H-causal", new(3 * c.Shape.Heads), default),
                (_, false) => new AttentionVariant<SoftcapScore, NoMask>($"softcap-{cap}", new(cap), default),
                (_, true) => new AttentionVariant<SoftcapScore, CausalMask>($"softcap-{cap}-causal", new(cap), default),
            };
            var result = AttentionRun.Run(Backend, variant, c, options);
            var (output, lse) = variant.Reference(c.Shape, c.Query, c.Key, c.Value, options);
            var context = $"{variant.Name}: {c} scale={options.Scale:R}";
            Tolerance.Kernel.AssertClose(result.Output, output, "output", context);
            Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", context);
        });

    [Property(MaxTest = 100)]
    public Property LogSumExpIsOptional() =>
        Prop.ForAll(Cases, c =>
        {
            var variant = VariantOf(c);
            var with = AttentionRun.Run(Backend, variant, c);
            var without = new float[c.Shape.OutputLength];
            Backend.Run(variant, c.Shape, c.Query, c.Key, c.Value, without, Span<float>.Empty, c.Options);
            Tolerance.Kernel.AssertClose(without, with.Output, "output without log-sum-exp", c);
        });

    /// <summary>
    /// Logits up to 1e4 in magnitude (Scale chosen so the largest |scale q.k| is 1e4) must give
    /// finite results that match the reference. The tolerance scales with the logits: the fp32
    /// kernel rounds q*scale and accumulates D products, so a logit carries an error of about
    /// sqrt(D+2) * u * L, u = 2^-24 and L = scale * max sum_c |q_c k_c| (4x margin below).
    /// A logit error delta changes each softmax weight by a factor e^(+-delta), so an output
    /// (a convex combination of values in [-1, 1]) moves by at most ~2 delta, and the
    /// log-sum-exp by delta. The log-sum-exp gets no rtol: at 1e4 it would allow 1.0.
    /// That argument is softmax's, so the softmax variants of the registry run it.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property LargeLogitsStayFiniteAndAccurate() =>
        Prop.ForAll(Cases, c =>
        {
            var (maxDot, maxAbsSum) = DotExtremes(c);
            float scale = (float)(1e4 / maxDot);
            double delta = 4 * Math.Sqrt(c.Shape.HeadDim + 2) * Unit * scale * maxAbsSum;
            var options = c.Options with { Scale = scale };
            var variant = SoftmaxVariantOf(c);
            var result = AttentionRun.Run(Backend, variant, c, options);
            var (output, lse) = variant.Reference(c.Shape, c.Query, c.Key, c.Value, options);
            var context = $"{variant.Name}: {c} scale={scale:R} delta={delta:g3}";
            foreach (var x in result.Output)
                if (!float.IsFinite(x)) throw new XunitException($"non-finite output {x}. {context}");
            new Tolerance(2 * delta + 1e-5, 1e-4).AssertClose(result.Output, output, "output", context);
            new Tolerance(delta + 1e-5, 0).AssertClose(result.LogSumExp, lse, "log-sum-exp", context);
        });

    /// <summary>
    /// Causal, bottom-right, seqQ &gt; seqK: the first seqQ - seqK query rows have positions
    /// before key 0 and see no key. Their outputs are exactly 0 and their log-sum-exp is
    /// exactly -infinity; the other rows match the reference.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property FullyMaskedRowsGiveZerosAndNegativeInfinity() =>
        Prop.ForAll(MaskedRowCases(), c =>
        {
            var s = c.Shape;
            int masked = s.SeqQ - s.SeqK;
            foreach (var variant in VariantRegistry.All.Where(IsCausal))
            {
                var result = AttentionRun.Run(Backend, variant, c);
                var context = $"{variant.Name}: {c}";
                for (int bh = 0; bh < s.Batch * s.Heads; bh++)
                    for (int i = 0; i < masked; i++)
                    {
                        long row = (long)bh * s.SeqQ + i;
                        if (!float.IsNegativeInfinity(result.LogSumExp[row]))
                            throw new XunitException(
                                $"row {row}: log-sum-exp {result.LogSumExp[row]}, expected -inf. {context}");
                        for (int col = 0; col < s.ValueDim; col++)
                            if (result.Output[row * s.ValueDim + col] is var o && (o != 0f || float.IsNaN(o)))
                                throw new XunitException($"row {row} col {col}: output {o}, expected 0. {context}");
                    }
                var (output, lse) = variant.Reference(s, c.Query, c.Key, c.Value, c.Options);
                Tolerance.Kernel.AssertClose(result.Output, output, "output", context);
                if (VariantFacts.LogSumExpWellConditioned(variant))
                    Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", context);
            }
        });

    /// <summary>Cases with bottom-right alignment and seqQ &gt; seqK.</summary>
    private Arbitrary<AttentionCase> MaskedRowCases() =>
        (from c in AttentionGen.Cases(Limits)
         from extra in Gen.Choose(1, Math.Max(1, MaxSeq / 2))
         let seqK = Math.Max(1, Math.Min(c.Shape.SeqK, MaxSeq - extra))
         let shape = AttentionGen.Fit(c.Shape with { SeqK = seqK, SeqQ = seqK + extra }, Limits.Budget)
         where shape.SeqQ > shape.SeqK
         select c with { Shape = shape, Alignment = QueryAlignment.BottomRight })
        .ToArbitrary();

    /// <summary>max |q.k| and max sum_c |q_c k_c| over the (query, key) pairs that meet.</summary>
    private static (double MaxDot, double MaxAbsSum) DotExtremes(AttentionCase c)
    {
        var s = c.Shape;
        int d = s.HeadDim;
        double maxDot = 0, maxAbsSum = 0;
        for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.Heads; h++)
                for (int i = 0; i < s.SeqQ; i++)
                    for (int j = 0; j < s.SeqK; j++)
                    {
                        long q = (((long)b * s.Heads + h) * s.SeqQ + i) * d;
                        long k = (((long)b * s.KvHeads + h / s.GroupSize) * s.SeqK + j) * d;
                        double dot = 0, abs = 0;
                        for (int x = 0; x < d; x++)
                        {
                            double p = (double)c.Query[q + x] * c.Key[k + x];
                            dot += p;
                            abs += Math.Abs(p);
                        }
                        maxDot = Math.Max(maxDot, Math.Abs(dot));
                        maxAbsSum = Math.Max(maxAbsSum, abs);
                    }
        return (maxDot, maxAbsSum);
    }
}
