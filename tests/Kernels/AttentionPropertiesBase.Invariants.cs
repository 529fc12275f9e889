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
using Xunit;

namespace Managed.Tests.Kernels;

// Metamorphic properties: transformations of the input that must not change the result.
public abstract partial class AttentionPropertiesBase
{
    private static readonly float[] Shifts = [-1000f, -37.25f, -1f, 0f, 0.5f, 3f, 100f, 1000f];

    /// <summary>
    /// softmax(s + c) = softmax(s): adding c to every logit leaves the output unchanged and
    /// moves the log-sum-exp by exactly c. fp32 stores s + c with an error of about
    /// u * (|c| + |s|) (u = 2^-24, |s| &lt;= ~20 here), so the tolerance adds
    /// 4 u (|c| + 20) to atol for the output and the log-sum-exp.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property AddingConstantToEveryLogitChangesNothing() =>
        Prop.ForAll(Cases, Gen.Elements(Shifts).ToArbitrary(), (c, shift) =>
        {
            bool causal = c.Variant % 2 == 1;
            var plain = causal ? RunPair(c, default(NoScore), default(CausalMask))
                : RunPair(c, default(NoScore), default(NoMask));
            var shifted = causal ? RunPair(c, new ShiftScore(shift), default(CausalMask))
                : RunPair(c, new ShiftScore(shift), default(NoMask));
            double slack = 4 * 5.96e-8 * (Math.Abs(shift) + 20);
            var context = $"shift={shift} causal={causal}: {c}";
            new Tolerance(1e-5 + slack, 1e-4).AssertClose(shifted.Output, plain.Output, "output", context);
            var expected = plain.LogSumExp.Select(x => (double)x + shift).ToArray();
            new Tolerance(1e-5 + slack, 1e-4).AssertClose(shifted.LogSumExp, expected, "log-sum-exp", context);
        });

    /// <summary>
    /// Without a mask and with a position-free score, attention is a function of the set of
    /// (key, value) pairs: permuting keys together with values (per batch and KV head) changes
    /// nothing but the summation order.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property PermutingKeysWithValuesChangesNothing() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            var random = c.Random(1);
            var key = (float[])c.Key.Clone();
            var value = (float[])c.Value.Clone();
            for (int bh = 0; bh < s.Batch * s.KvHeads; bh++)
            {
                int[] perm = Enumerable.Range(0, s.SeqK).ToArray();
                random.Shuffle(perm);
                for (int j = 0; j < s.SeqK; j++)
                {
                    long from = (long)bh * s.SeqK + perm[j], to = (long)bh * s.SeqK + j;
                    Array.Copy(c.Key, from * s.HeadDim, key, to * s.HeadDim, s.HeadDim);
                    Array.Copy(c.Value, from * s.ValueDim, value, to * s.ValueDim, s.ValueDim);
                }
            }
            bool softcap = c.Variant % 2 == 1;
            var a = softcap ? RunPair(c, new SoftcapScore(30f), default(NoMask))
                : RunPair(c, default(NoScore), default(NoMask));
            var b = softcap
                ? AttentionRun.Run(Backend, s, c.Query, key, value, new SoftcapScore(30f), default(NoMask), c.Options)
                : AttentionRun.Run(Backend, s, c.Query, key, value, default(NoScore), default(NoMask), c.Options);
            var context = $"softcap={softcap}: {c}";
            Tolerance.Kernel.AssertClose(b.Output, a.Output, "output", context);
            Tolerance.Kernel.AssertClose(b.LogSumExp, a.LogSumExp, "log-sum-exp", context);
        });

    /// <summary>
    /// Split-KV: attention over keys [0, split) and over [split, seqK), each with its
    /// log-sum-exp, merged by <see cref="AttentionMerge"/>, equals attention over all keys.
    /// Dense (no mask, bottom-right) or causal top-left, where the second block keeps the mask of
    /// the whole run through <see cref="OffsetCausalMask"/>; there a block can see no key for a
    /// row (log-sum-exp -infinity), which the merge must ignore.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property MergingAnySplitOfTheKeysEqualsTheWhole() =>
        Prop.ForAll(Cases.Filter(c => c.Shape.SeqK >= 2), c =>
        {
            var s = c.Shape;
            int split = c.Random(2).Next(1, s.SeqK);
            bool causal = c.Variant % 2 == 1;
            var options = causal ? new AttentionOptions { Alignment = QueryAlignment.TopLeft } : c.Options;
            var (firstK, firstV) = SliceKeys(c, 0, split);
            var (secondK, secondV) = SliceKeys(c, split, s.SeqK);
            var firstShape = s with { SeqK = split };
            var secondShape = s with { SeqK = s.SeqK - split };
            AttentionResult whole, first, second;
            if (causal)
            {
                whole = RunPair(c, default(NoScore), default(CausalMask), options);
                first = AttentionRun.Run(Backend, firstShape, c.Query, firstK, firstV,
                    default(NoScore), default(CausalMask), options);
                second = AttentionRun.Run(Backend, secondShape, c.Query, secondK, secondV,
                    default(NoScore), new OffsetCausalMask(split), options);
            }
            else
            {
                whole = RunPair(c, default(NoScore), default(NoMask), options);
                first = AttentionRun.Run(Backend, firstShape, c.Query, firstK, firstV,
                    default(NoScore), default(NoMask), options);
                second = AttentionRun.Run(Backend, secondShape, c.Query, secondK, secondV,
                    default(NoScore), default(NoMask), options);
            }
            var (output, lse) = AttentionRun.Allocate(s);
            AttentionMerge.Merge(s.ValueDim, first.Output, first.LogSumExp, second.Output,
                second.LogSumExp, output, lse);
            var context = $"split={split} causal={causal}: {c}";
            Tolerance.Kernel.AssertClose(output, whole.Output, "merged output", context);
            Tolerance.Kernel.AssertClose(lse, whole.LogSumExp, "merged log-sum-exp", context);
        });

    /// <summary>
    /// GQA/MQA: query head h reads KV head h / (heads / kvHeads). The result equals plain
    /// multi-head attention on K and V with each KV head repeated heads / kvHeads times.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property GroupedQueryEqualsRepeatedKvHeads() =>
        Prop.ForAll(Cases.Filter(c => c.Shape.GroupSize > 1), c =>
        {
            var s = c.Shape;
            var wide = s with { KvHeads = s.Heads };
            var key = new float[wide.KeyLength];
            var value = new float[wide.ValueLength];
            for (int b = 0; b < s.Batch; b++)
                for (int h = 0; h < s.Heads; h++)
                {
                    long from = (long)b * s.KvHeads + h / s.GroupSize, to = (long)b * s.Heads + h;
                    long kn = (long)s.SeqK * s.HeadDim, vn = (long)s.SeqK * s.ValueDim;
                    Array.Copy(c.Key, from * kn, key, to * kn, kn);
                    Array.Copy(c.Value, from * vn, value, to * vn, vn);
                }
            var variant = VariantOf(c);
            var grouped = AttentionRun.Run(Backend, variant, c);
            var repeated = AttentionRun.Run(Backend, variant, wide, c.Query, key, value, c.Options);
            var context = $"{variant.Name}: {c}";
            Tolerance.Kernel.AssertClose(grouped.Output, repeated.Output, "output", context);
            Tolerance.Kernel.AssertClose(grouped.LogSumExp, repeated.LogSumExp, "log-sum-exp", context);
        });

    /// <summary>
    /// One query, one key, causal: the only weight is 1, so the output is V itself (to 1 ulp:
    /// exp(0) and the division by the sum are the only roundings) and the log-sum-exp is the
    /// scaled logit q.k / sqrt(D).
    /// </summary>
    [Property(MaxTest = 100)]
    public Property CausalSingleTokenReturnsValue() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape with { SeqQ = 1, SeqK = 1 };
            var one = c with { Shape = s };
            var variant = VariantRegistry.All.Where(IsCausal).ElementAt(c.Variant % 3);
            var result = AttentionRun.Run(Backend, variant, one);
            var expected = new double[s.OutputLength];
            for (int b = 0; b < s.Batch; b++)
                for (int h = 0; h < s.Heads; h++)
                    for (int x = 0; x < s.ValueDim; x++)
                        expected[((long)b * s.Heads + h) * s.ValueDim + x] =
                            one.Value[((long)b * s.KvHeads + h / s.GroupSize) * s.ValueDim + x];
            new Tolerance(0, 2.4e-7).AssertClose(result.Output, expected, "output", $"{variant.Name}: {one}");
            var (_, lse) = variant.Reference(s, one.Query, one.Key, one.Value, one.Options);
            Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", $"{variant.Name}: {one}");
            Assert.All(result.LogSumExp, x => Assert.True(float.IsFinite(x)));
        });

    private AttentionResult RunPair<TScore, TMask>(AttentionCase c, TScore score, TMask mask,
        AttentionOptions? options = null)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        AttentionRun.Run(Backend, c.Shape, c.Query, c.Key, c.Value, score, mask, options ?? c.Options);

    /// <summary>K and V restricted to keys [from, to): (batch, kvHeads, to - from, dim).</summary>
    private static (float[] Key, float[] Value) SliceKeys(AttentionCase c, int from, int to)
    {
        var s = c.Shape;
        int n = to - from;
        var key = new float[(long)s.Batch * s.KvHeads * n * s.HeadDim];
        var value = new float[(long)s.Batch * s.KvHeads * n * s.ValueDim];
        for (int bh = 0; bh < s.Batch * s.KvHeads; bh++)
        {
            Array.Copy(c.Key, ((long)bh * s.SeqK + from) * s.HeadDim, key, (long)bh * n * s.HeadDim,
                (long)n * s.HeadDim);
            Array.Copy(c.Value, ((long)bh * s.SeqK + from) * s.ValueDim, value, (long)bh * n * s.ValueDim,
                (long)n * s.ValueDim);
        }
        return (key, value);
    }
}
