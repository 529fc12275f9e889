using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.Kernels;

// NaN propagation, as FlashAttention.Forward documents it: "NaN or infinity in Q, K or V
// propagates (IEEE arithmetic) into the rows that see it".
public abstract partial class AttentionPropertiesBase
{
    /// <summary>
    /// A NaN at V[b, kvHead, j, x] reaches column x of every row that attends to key j (its
    /// weight is positive or has underflowed to 0, and 0 * NaN is NaN either way), for every
    /// query head of that KV head's group. This is IEEE propagation, not a guarantee of
    /// detection: a NaN where no row attends can vanish.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property NanInValueReachesRowsThatAttendToIt() =>
        Prop.ForAll(Cases, c =>
        {
            var (nan, b, kvHead, j, x) = WithNanValue(c);
            var variant = VariantOf(c);
            var result = AttentionRun.Run(Backend, variant, c.Shape, c.Query, c.Key, nan, c.Options);
            ForRowsOfGroup(c, b, kvHead, variant, j, (row, allowed) =>
            {
                if (allowed && !float.IsNaN(result.Output[row * c.Shape.ValueDim + x]))
                    throw new XunitException(
                        $"row {row} attends to key {j} but column {x} is {result.Output[row * c.Shape.ValueDim + x]}, "
                        + $"not NaN. {variant.Name}: {c}");
            });
        });

    /// <summary>
    /// The converse, under a causal mask: rows that do not attend to key j (their position is
    /// before j) never read V[j], so they stay equal to the reference (which skips masked keys).
    /// A masked key must contribute nothing, not 0 * V[j]: a KV cache may hold garbage (NaN)
    /// past the causal frontier.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property NanInValueStaysOutOfRowsThatDoNotAttendToIt() =>
        Prop.ForAll(Cases, c =>
        {
            var (nan, _, _, _, _) = WithNanValue(c);
            var variant = VariantRegistry.All.Where(IsCausal).ElementAt(c.Variant % 3);
            var result = AttentionRun.Run(Backend, variant, c.Shape, c.Query, c.Key, nan, c.Options);
            var (output, lse) = variant.Reference(c.Shape, c.Query, c.Key, nan, c.Options);
            var context = $"{variant.Name}: {c}";
            Tolerance.Kernel.AssertClose(result.Output, output, "output", context);
            Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", context);
        });

    /// <summary>
    /// Smallest case of the property above: causal, top-left, seqQ = seqK = 2, D = 1, and a NaN
    /// in V[1]. Row 0 sees key 0 only, so its output is V[0] = 1 exactly.
    /// </summary>
    [Fact]
    public void NanInValueOfMaskedKeyDoesNotLeak()
    {
        var shape = new AttentionShape(1, 1, 1, 2, 2, 1, 1);
        var result = AttentionRun.Run(Backend, shape, [0.5f, 0.5f], [1f, 1f], [1f, float.NaN],
            default(NoScore), default(CausalMask), new AttentionOptions { Alignment = QueryAlignment.TopLeft });
        Assert.Equal(1f, result.Output[0]);
        Assert.True(float.IsNaN(result.Output[1]));
    }

    /// <summary>V with one NaN at a random (batch, kvHead, key, column) of the case.</summary>
    private static (float[] Value, int Batch, int KvHead, int Key, int Column) WithNanValue(AttentionCase c)
    {
        var s = c.Shape;
        var random = c.Random(3);
        int b = random.Next(s.Batch), kvHead = random.Next(s.KvHeads), j = random.Next(s.SeqK),
            x = random.Next(s.ValueDim);
        var value = (float[])c.Value.Clone();
        value[(((long)b * s.KvHeads + kvHead) * s.SeqK + j) * s.ValueDim + x] = float.NaN;
        return (value, b, kvHead, j, x);
    }

    /// <summary>Calls <paramref name="check"/>(row, mask allows key j) for each query row of the group.</summary>
    private static void ForRowsOfGroup(AttentionCase c, int b, int kvHead, IAttentionVariant variant,
        int j, Action<long, bool> check)
    {
        var s = c.Shape;
        int offset = s.QueryOffset(c.Alignment);
        bool causal = IsCausal(variant);
        for (int h = kvHead * s.GroupSize; h < (kvHead + 1) * s.GroupSize; h++)
            for (int i = 0; i < s.SeqQ; i++)
            {
                bool allowed = causal ? default(CausalMask).Allows(b, h, i + offset, j)
                    : default(NoMask).Allows(b, h, i + offset, j);
                check(((long)b * s.Heads + h) * s.SeqQ + i, allowed);
            }
    }
}
