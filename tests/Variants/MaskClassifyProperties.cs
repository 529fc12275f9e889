using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Managed.Tests.Support;
using Xunit;

namespace Managed.Tests.Variants;

/// <summary>
/// Classify must be exact in one direction (the kernel skips Empty tiles and the per-pair test
/// of Full tiles): an Empty tile holds no allowed pair, a Full tile no masked pair.
/// </summary>
public sealed class MaskClassifyProperties
{
    /// <summary>A tile [q0, q1) x [k0, k1) and a (batch, head).</summary>
    public sealed record Tile(int Batch, int Head, int Q0, int Q1, int K0, int K1)
    {
        /// <inheritdoc/>
        public override string ToString() => $"b={Batch} h={Head} q=[{Q0},{Q1}) k=[{K0},{K1})";
    }

    /// <summary>
    /// Query positions may be negative (bottom-right alignment with seqQ &gt; seqK); tiles of
    /// 1..80 rows and keys, so single rows/keys, diagonal-crossing and far-off tiles all occur.
    /// </summary>
    internal static Arbitrary<Tile> Tiles { get; } =
        (from batch in Gen.Choose(0, 3)
         from head in Gen.Choose(0, 7)
         from q0 in Gen.Choose(-100, 300)
         from rows in Gen.Frequency((1, Gen.Elements(1, 16, 32, 33, 64)), (2, Gen.Choose(1, 80)))
         from k0 in Gen.Frequency((1, Gen.Choose(q0 - 80, q0 + 80)), (1, Gen.Choose(0, 300)))
         from keys in Gen.Frequency((1, Gen.Elements(1, 16, 32, 64)), (2, Gen.Choose(1, 80)))
         select new Tile(batch, head, q0, q0 + rows, Math.Max(0, k0), Math.Max(0, k0) + keys))
        .ToArbitrary();

    [Property(MaxTest = 500)]
    public Property CausalClassifyAgreesWithAllows() =>
        Prop.ForAll(Tiles, t => AssertAgrees(default(CausalMask), t));

    [Property(MaxTest = 200)]
    public Property NoMaskClassifyAgreesWithAllows() =>
        Prop.ForAll(Tiles, t => AssertAgrees(default(NoMask), t));

    [Property(MaxTest = 300)]
    public Property OffsetCausalTestMaskClassifyAgreesWithAllows() =>
        Prop.ForAll(Tiles, Gen.Choose(0, 100).ToArbitrary(), (t, offset) => AssertAgrees(new OffsetCausalMask(offset), t));

    /// <summary>
    /// Classify is not allowed to be lazy in the other direction either: Partial is only
    /// correct-but-slow, yet a causal tile that is entirely allowed or entirely masked must be
    /// reported as such, or the kernel loses the block skipping the mask promises.
    /// </summary>
    [Property(MaxTest = 300)]
    public Property CausalClassifyIsTight() =>
        Prop.ForAll(Tiles, t =>
        {
            var (any, all) = Scan(default(CausalMask), t);
            var kind = default(CausalMask).Classify(t.Batch, t.Head, t.Q0, t.Q1, t.K0, t.K1);
            var expected = !any ? TileKind.Empty : all ? TileKind.Full : TileKind.Partial;
            Assert.True(kind == expected, $"{kind}, expected {expected} for {t}");
        });

    internal static void AssertAgrees<TMask>(TMask mask, Tile t) where TMask : struct, IMaskPredicate
    {
        var kind = mask.Classify(t.Batch, t.Head, t.Q0, t.Q1, t.K0, t.K1);
        var (any, all) = Scan(mask, t);
        Assert.False(kind == TileKind.Empty && any, $"{typeof(TMask).Name}: Empty tile {t} holds an allowed pair");
        Assert.False(kind == TileKind.Full && !all, $"{typeof(TMask).Name}: Full tile {t} holds a masked pair");
    }

    internal static (bool Any, bool All) Scan<TMask>(TMask mask, Tile t) where TMask : struct, IMaskPredicate
    {
        bool any = false, all = true;
        for (int q = t.Q0; q < t.Q1; q++)
            for (int k = t.K0; k < t.K1; k++)
            {
                bool allowed = mask.Allows(t.Batch, t.Head, q, k);
                any |= allowed;
                all &= allowed;
            }
        return (any, all);
    }
}
