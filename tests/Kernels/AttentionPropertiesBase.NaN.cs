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
using Xunit.Sdk;

namespace Managed.Tests.Kernels;

// The NaN contract of FlashAttention's class summary: NaN or infinity in Q, K or V is not
// masked away; it propagates into a row that attends to it and may reach rows of the same query
// tile that mask it when the key's tile is only partially masked; keys in tiles the mask
// classifies Empty for a query tile are never read for that tile, keys >= seqK never.
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
    /// The converse, as far as the contract goes: causal mask, top-left alignment, the
    /// backend's tiles (<see cref="TileSizes"/>). A NaN at V[j] may reach masked rows that share
    /// a query tile with key j's partially masked tile (0 * NaN), so those rows are not checked
    /// here. Every row whose whole query tile lies before key j's tile (the mask classifies that
    /// key tile Empty for the query tile, so the kernel must not read it) stays finite and equal
    /// to the reference, which skips masked keys; rows of other batches and KV groups too.
    /// The log-sum-exp does not depend on V and is checked on every row. A kernel that visited
    /// empty tiles (weight 0 times NaN) fails this property.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property NanInValueStaysOutOfQueryTilesThatSkipItsKeyTile() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            var options = c.Options with { Alignment = QueryAlignment.TopLeft };
            var (nan, b, kvHead, j, _) = WithNanValue(c);
            var variant = VariantRegistry.All.Where(IsCausal).ElementAt(c.Variant % 3);
            var result = AttentionRun.Run(Backend, variant, s, c.Query, c.Key, nan, options);
            var (output, lse) = variant.Reference(s, c.Query, c.Key, nan, options);
            var (queryTile, keyTile) = TileSizes(s);
            int bq = Math.Min(queryTile, s.SeqQ);
            int k0 = j / keyTile * keyTile, k1 = Math.Min(k0 + keyTile, s.SeqK);
            var context = $"{variant.Name} NaN at V[b={b}, kvHead={kvHead}, key={j}] "
                + $"tiles {queryTile}x{keyTile}: {c with { Alignment = QueryAlignment.TopLeft }}";
            Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", context);
            int dv = s.ValueDim;
            for (int bh = 0; bh < s.Batch * s.Heads; bh++)
                for (int i = 0; i < s.SeqQ; i++)
                {
                    int h = bh % s.Heads, q0 = i / bq * bq, rows = Math.Min(bq, s.SeqQ - q0);
                    bool sameGroup = bh / s.Heads == b && h / s.GroupSize == kvHead;
                    // Top-left: position = row. Same classification call as the kernels make.
                    bool skipped = default(CausalMask).Classify(b, h, q0, q0 + rows, k0, k1) == TileKind.Empty;
                    if (sameGroup && i < j && !skipped) continue; // may see the NaN: not promised
                    long row = (long)bh * s.SeqQ + i;
                    Tolerance.Kernel.AssertClose(result.Output.AsSpan((int)(row * dv), dv),
                        output.AsSpan((int)(row * dv), dv), $"output row {row} (query {i}, head {h})", context);
                }
        });

    /// <summary>
    /// Smallest deterministic case of the property above: D = 1, Q = K = 0 (equal weights),
    /// causal top-left, n = 2 max(tiles) keys and queries, V = 1 but V[n/2] = NaN. n/2 starts
    /// both a key tile and a query tile, so rows before it are in query tiles for which key
    /// n/2's tile is Empty: their output is 1 (to rounding). Rows from n/2 on attend: NaN.
    /// </summary>
    [Fact]
    public void NanInValueOfKeyInEmptyTileDoesNotLeak()
    {
        var (queryTile, keyTile) = TileSizes(new AttentionShape(1, 1, 1, 1, 1, 1, 1));
        int n = 2 * Math.Max(queryTile, keyTile), j = n / 2;
        var shape = new AttentionShape(1, 1, 1, n, n, 1, 1);
        var value = Enumerable.Repeat(1f, n).ToArray();
        value[j] = float.NaN;
        var result = AttentionRun.Run(Backend, shape, new float[n], new float[n], value,
            default(NoScore), default(CausalMask), new AttentionOptions { Alignment = QueryAlignment.TopLeft });
        for (int i = 0; i < n; i++)
            if (i < j) Assert.True(Math.Abs(result.Output[i] - 1f) <= 1e-6f, $"row {i}: {result.Output[i]}");
            else Assert.True(float.IsNaN(result.Output[i]), $"row {i}: {result.Output[i]}, expected NaN");
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
        var allows = MaskOf.Allows(variant, s); // the variant's own predicate, head-dependent ones too
        for (int h = kvHead * s.GroupSize; h < (kvHead + 1) * s.GroupSize; h++)
            for (int i = 0; i < s.SeqQ; i++)
            {
                bool allowed = allows(b, h, i + offset, j);
                check(((long)b * s.Heads + h) * s.SeqQ + i, allowed);
            }
    }
}
