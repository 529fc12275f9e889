using FsCheck;
using FsCheck.Fluent;
using Managed.Kernels.Variants;

namespace Managed.Tests.Variants;

/// <summary>Random parameters of the masks in src/Kernels/Variants (grids of up to ~300 tokens).</summary>
public static class MaskGen
{
    /// <summary>left, right in 0..100.</summary>
    public static Gen<SlidingWindowMask> SlidingWindow { get; } =
        from left in Gen.Choose(0, 100) from right in Gen.Choose(0, 100) select new SlidingWindowMask(left, right);

    /// <summary>sinks 0..20, window 1..100.</summary>
    public static Gen<SinkWindowMask> SinkWindow { get; } =
        from sinks in Gen.Choose(0, 20) from window in Gen.Choose(1, 100) select new SinkWindowMask(sinks, window);

    /// <summary>prefix 0..150.</summary>
    public static Gen<PrefixLmMask> PrefixLm { get; } = Gen.Choose(0, 150).Select(p => new PrefixLmMask(p));

    /// <summary>An axis of 2..maxExtent with dilation 1..maxDilation, kernel 2..maxKernel,
    /// either causality and stride 1..maxStride, within NATTEN's limits (kernel x dilation
    /// &lt;= extent, stride &lt;= kernel).</summary>
    public static Gen<NeighborhoodAxis> Axis(int maxExtent, int maxKernel, int maxDilation,
        int maxStride) =>
        from extent in Gen.Choose(2, maxExtent)
        from dilation in Gen.Choose(1, Math.Max(1, Math.Min(maxDilation, extent / 2)))
        from kernel in Gen.Choose(2, Math.Max(2, Math.Min(maxKernel, extent / dilation)))
        from causal in Gen.Elements(false, false, true)
        from stride in Gen.Frequency((2, Gen.Constant(1)),
            (1, Gen.Choose(1, Math.Min(maxStride, kernel))))
        select new NeighborhoodAxis(extent, kernel, dilation, causal, stride);

    /// <summary>1-D grids of 1..300 tokens.</summary>
    public static Gen<NeighborhoodMask1D> Neighborhood1D { get; } =
        Axis(300, 17, 4, 8).Select(a => new NeighborhoodMask1D(a));

    /// <summary>2-D grids of up to 16 x 20.</summary>
    public static Gen<NeighborhoodMask2D> Neighborhood2D { get; } =
        from rows in Axis(16, 7, 3, 4) from columns in Axis(20, 7, 3, 4)
        select new NeighborhoodMask2D(rows, columns);

    /// <summary>3-D grids of up to 6 x 6 x 8.</summary>
    public static Gen<NeighborhoodMask3D> Neighborhood3D { get; } =
        from depth in Axis(6, 5, 2, 3) from rows in Axis(6, 5, 2, 3) from columns in Axis(8, 5, 2, 3)
        select new NeighborhoodMask3D(depth, rows, columns);

    /// <summary>Images of up to 16 x 20, blocks 1..6, halo 0..3.</summary>
    public static Gen<HaloMask> Halo { get; } =
        from h in Gen.Choose(1, 16) from w in Gen.Choose(1, 20) from b in Gen.Choose(1, 6)
        from halo in Gen.Choose(0, 3)
        select new HaloMask(h, w, b, halo);

    /// <summary>1..12 frames of 1..32 tokens, window 0..40.</summary>
    public static Gen<RadialMask> Radial { get; } =
        from f in Gen.Choose(1, 12) from s in Gen.Choose(1, 32) from w in Gen.Choose(0, 40)
        select new RadialMask(f, s, w);

    /// <summary>block 1..16, local 1..4.</summary>
    public static Gen<PowerAttentionMask> Power { get; } =
        from b in Gen.Choose(1, 16) from local in Gen.Choose(1, 4) select new PowerAttentionMask(b, local);

    /// <summary>stride 1..6, local 0..40.</summary>
    public static Gen<StridedShardMask> StridedShard { get; } =
        from s in Gen.Choose(1, 6) from local in Gen.Choose(0, 40) select new StridedShardMask(s, local);

    /// <summary>sinks 0..8, one to four windows of 1..64.</summary>
    public static Gen<MoaMask> Moa { get; } =
        from sinks in Gen.Choose(0, 8) from n in Gen.Choose(1, 4)
        from w in Gen.ArrayOf(Gen.Choose(1, 64), 4)
        select new MoaMask(sinks, w[0], n > 1 ? w[1] : 0, n > 2 ? w[2] : 0, n > 3 ? w[3] : 0);

    /// <summary>Random 64-bit head masks, sinks 0..8, window 1..64.</summary>
    public static Gen<DuoAttentionMask> Duo { get; } =
        from hi in Gen.Choose(0, int.MaxValue) from lo in Gen.Choose(0, int.MaxValue)
        from sinks in Gen.Choose(0, 8) from window in Gen.Choose(1, 64)
        select new DuoAttentionMask(((ulong)(uint)hi << 33) ^ (uint)lo, sinks, window);
}
