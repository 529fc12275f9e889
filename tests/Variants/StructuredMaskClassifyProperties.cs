using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Xunit;
using static Managed.Tests.Variants.MaskClassifyProperties;

namespace Managed.Tests.Variants;

/// <summary>
/// Classify against Allows for the window, grid, sparse and per-head masks and the
/// combinators, on random parameters and tiles: no Empty tile holds an allowed pair, no Full
/// tile a masked one. Masks whose Classify is documented as exact must also be tight.
/// </summary>
public sealed class StructuredMaskClassifyProperties
{
    [Property(MaxTest = 300)]
    public Property SlidingWindowIsExact() =>
        Prop.ForAll(MaskGen.SlidingWindow.ToArbitrary(), Tiles, (m, t) => AssertTight(m, t));

    [Property(MaxTest = 300)]
    public Property SinkWindowIsExact() =>
        Prop.ForAll(MaskGen.SinkWindow.ToArbitrary(), Tiles, (m, t) => AssertTight(m, t));

    [Property(MaxTest = 300)]
    public Property PrefixLmIsExact() =>
        Prop.ForAll(MaskGen.PrefixLm.ToArbitrary(), Tiles, (m, t) => AssertTight(m, t));

    [Property(MaxTest = 200)]
    public Property MoaIsExact() =>
        Prop.ForAll(MaskGen.Moa.ToArbitrary(), Tiles, (m, t) => AssertTight(m, t));

    [Property(MaxTest = 200)]
    public Property DuoIsExact() =>
        Prop.ForAll(MaskGen.Duo.ToArbitrary(), Tiles, (m, t) => AssertTight(m, t));

    /// <summary>1-D neighborhoods of dilation 1 and stride 1: windows are contiguous and
    /// their hull over consecutive queries too, so Classify is exact.</summary>
    [Property(MaxTest = 300)]
    public Property Neighborhood1DPlainIsExact() =>
        Prop.ForAll(MaskGen.Axis(300, 17, 1, 1).Select(a => new NeighborhoodMask1D(a)).ToArbitrary(), Tiles,
            (m, t) => AssertTight(m, t));

    [Property(MaxTest = 400)]
    public Property Neighborhood1DAgrees() =>
        Prop.ForAll(MaskGen.Neighborhood1D.ToArbitrary(), Tiles, (m, t) => AssertAgrees(m, t));

    [Property(MaxTest = 400)]
    public Property Neighborhood2DAgrees() =>
        Prop.ForAll(MaskGen.Neighborhood2D.ToArbitrary(), Tiles, (m, t) => AssertAgrees(m, t));

    [Property(MaxTest = 400)]
    public Property Neighborhood3DAgrees() =>
        Prop.ForAll(MaskGen.Neighborhood3D.ToArbitrary(), Tiles, (m, t) => AssertAgrees(m, t));

    [Property(MaxTest = 300)]
    public Property HaloAgrees() =>
        Prop.ForAll(MaskGen.Halo.ToArbitrary(), Tiles, (m, t) => AssertAgrees(m, t));

    [Property(MaxTest = 300)]
    public Property RadialAgrees() =>
        Prop.ForAll(MaskGen.Radial.ToArbitrary(), Tiles, (m, t) => AssertAgrees(m, t));

    [Property(MaxTest = 300)]
    public Property PowerAttentionAgrees() =>
        Prop.ForAll(MaskGen.Power.ToArbitrary(), Tiles, (m, t) => AssertAgrees(m, t));

    [Property(MaxTest = 300)]
    public Property StridedShardAgrees() =>
        Prop.ForAll(MaskGen.StridedShard.ToArbitrary(), Tiles, (m, t) => AssertAgrees(m, t));

    [Property(MaxTest = 300)]
    public Property AndAgrees() =>
        Prop.ForAll(MaskGen.SlidingWindow.ToArbitrary(), MaskGen.Neighborhood2D.ToArbitrary(), Tiles,
            (a, b, t) => AssertAgrees(new And<SlidingWindowMask, NeighborhoodMask2D>(a, b), t));

    [Property(MaxTest = 300)]
    public Property OrAgrees() =>
        Prop.ForAll(MaskGen.PrefixLm.ToArbitrary(), MaskGen.Radial.ToArbitrary(), Tiles,
            (a, b, t) => AssertAgrees(new Or<PrefixLmMask, RadialMask>(a, b), t));

    /// <summary>Not of an exact mask is exact.</summary>
    [Property(MaxTest = 300)]
    public Property NotOfExactIsExact() =>
        Prop.ForAll(MaskGen.SinkWindow.ToArbitrary(), Tiles, (m, t) => AssertTight(new Not<SinkWindowMask>(m), t));

    [Property(MaxTest = 300)]
    public Property NotAgrees() =>
        Prop.ForAll(MaskGen.Neighborhood3D.ToArbitrary(), Tiles, (m, t) => AssertAgrees(new Not<NeighborhoodMask3D>(m), t));

    private static void AssertTight<TMask>(TMask mask, Tile t) where TMask : struct, IMaskPredicate
    {
        var (any, all) = Scan(mask, t);
        var kind = mask.Classify(t.Batch, t.Head, t.Q0, t.Q1, t.K0, t.K1);
        var expected = !any ? TileKind.Empty : all ? TileKind.Full : TileKind.Partial;
        Assert.True(kind == expected, $"{typeof(TMask).Name}: {kind}, expected {expected} for {t}");
    }
}
