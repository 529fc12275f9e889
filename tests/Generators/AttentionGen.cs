using FsCheck;
using FsCheck.Fluent;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;

namespace Managed.Tests.Generators;

/// <summary>Generators of attention problems, awkward sizes included.</summary>
public static class AttentionGen
{
    /// <summary>Head dims: 1 and 3 (no SIMD lane is full), 80 (not a power of two), up to 256.</summary>
    public static readonly int[] HeadDims = [1, 3, 16, 64, 80, 128, 256];

    /// <summary>
    /// Sequence lengths around the tile edges: the default QueryTile is 32, the default KeyTile 64,
    /// SIMD widths are 4, 8 and 16 floats; plus 1 and the limit itself.
    /// </summary>
    public static int[] EdgeLengths(int maxSeq) =>
        new[] { 1, 2, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 95, 96, 97, 127, 128, 129, 191, 192, 193 }
            .Where(n => n <= maxSeq).Append(maxSeq).Distinct().ToArray();

    /// <summary>A sequence length: an edge value half of the time, else uniform in 1..maxSeq.</summary>
    public static Gen<int> SeqLength(int maxSeq) =>
        Gen.Frequency((1, Gen.Elements(EdgeLengths(maxSeq))), (1, Gen.Choose(1, maxSeq)));

    /// <summary>A seed for System.Random.</summary>
    public static Gen<int> Seed { get; } = Gen.Choose(0, int.MaxValue);

    /// <summary>Random shapes within <paramref name="limits"/>, with any alignment and variant.</summary>
    public static Gen<AttentionCase> Cases(CaseLimits limits) =>
        from shape in Shapes(limits)
        from alignment in Gen.Elements(QueryAlignment.BottomRight, QueryAlignment.TopLeft)
        from variant in Gen.Choose(0, VariantRegistry.All.Count - 1)
        from seed in Seed
        select new AttentionCase(shape, alignment, variant, seed);

    /// <summary>Random shapes: GQA/MQA head counts, Nq != Nk, odd dims.</summary>
    public static Gen<AttentionShape> Shapes(CaseLimits limits) =>
        from batch in Gen.Choose(1, limits.MaxBatch)
        from kvHeads in Gen.Elements(HeadCounts(limits.MaxHeads))
        from groupSize in Gen.Elements(HeadCounts(limits.MaxHeads / kvHeads))
        from seqQ in SeqLength(limits.MaxSeq)
        from seqK in SeqLength(limits.MaxSeq)
        from headDim in Gen.Elements(HeadDims)
        from valueDim in Gen.Frequency((3, Gen.Constant(headDim)), (1, Gen.Elements(HeadDims)))
        select Fit(new AttentionShape(batch, kvHeads * groupSize, kvHeads, seqQ, seqK, headDim, valueDim),
            limits.Budget);

    /// <summary>The reference's work on <paramref name="s"/>.</summary>
    public static long Cost(AttentionShape s) =>
        (long)s.Batch * s.Heads * s.SeqQ * s.SeqK * (s.HeadDim + s.ValueDim);

    /// <summary>
    /// Shrinks <paramref name="s"/> until its cost fits: batch first, then heads (keeping
    /// heads a multiple of kvHeads), then the longer sequence. Large head dims thus come with
    /// fewer heads, as the brief of the suite asks.
    /// </summary>
    public static AttentionShape Fit(AttentionShape s, long budget)
    {
        while (Cost(s) > budget && s.Batch > 1) s = s with { Batch = s.Batch - 1 };
        while (Cost(s) > budget && s.Heads > s.KvHeads) s = s with { Heads = s.Heads / 2 };
        while (Cost(s) > budget && s.KvHeads > 1)
            s = s with { KvHeads = s.KvHeads / 2, Heads = s.Heads / 2 };
        while (Cost(s) > budget)
            s = s.SeqK >= s.SeqQ ? s with { SeqK = Math.Max(1, s.SeqK * 3 / 4) }
                : s with { SeqQ = Math.Max(1, s.SeqQ * 3 / 4) };
        return s;
    }

    private static int[] HeadCounts(int max) => new[] { 1, 2, 4, 8 }.Where(h => h <= max).ToArray();
}
