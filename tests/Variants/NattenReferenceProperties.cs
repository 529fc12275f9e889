using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Variants;

/// <summary>
/// NATTEN's neighborhood rule for one axis, written from its definitions (the reference
/// backend's mask and the Flex mask agree), sharing no code with src: a coordinate x lies in
/// dilation group x mod d at group position x div d; a group of an axis of length L has
/// L_r = |{x in [0, L) : x mod d = r}| members. With window_left = K div 2 and
/// window_right = K - 1 - K div 2, for group positions g (query) and h (key):
/// <list type="bullet">
/// <item>non-causal: the stride group's leader is its centre-most query,
/// min(floor(g / s) s + floor(s / 2), L_r - 1); the window centre is the leader clamped to
/// [window_left, L_r - 1 - window_right]; h is a neighbor iff
/// centre - window_left &lt;= h &lt;= centre + window_right;</item>
/// <item>causal: the leader is the group's last query, min(floor(g / s) s + s - 1, L_r - 1);
/// h is a neighbor iff h &lt;= g and leader - h &lt; K.</item>
/// </list>
/// Both coordinates must be in the same dilation group. NATTEN accepts K &gt;= 2 (odd or
/// even), s in [1, K], d &gt;= 1 and K d &lt;= L, and rejects anything else.
/// </summary>
public static class NattenAxis
{
    /// <summary>Whether key coordinate <paramref name="k"/> is in the neighborhood of query
    /// coordinate <paramref name="q"/>.</summary>
    public static bool IsNeighbor(int q, int k, int length, int kernel, int stride, int dilation,
        bool causal)
    {
        if (q % dilation != k % dilation) return false;
        int group = q % dilation, members = 0;
        for (int x = group; x < length; x += dilation) members++;
        int g = q / dilation, h = k / dilation;
        if (causal)
        {
            int last = Math.Min(g / stride * stride + stride - 1, members - 1);
            return h <= g && last - h < kernel;
        }
        int left = kernel / 2, right = kernel - 1 - left;
        int leader = Math.Min(g / stride * stride + stride / 2, members - 1);
        int centre = Math.Min(Math.Max(leader, left), members - 1 - right);
        return h >= centre - left && h <= centre + right;
    }

    /// <summary>NATTEN's argument checks: kernel &gt;= 2, stride and dilation &gt;= 1,
    /// stride &lt;= kernel, kernel x dilation &lt;= length.</summary>
    public static bool Accepts(int length, int kernel, int stride, int dilation) =>
        kernel >= 2 && stride >= 1 && dilation >= 1 && stride <= kernel
        && kernel * dilation <= length;
}

/// <summary>Parameters of one axis, for the generators and the reference.</summary>
public sealed record AxisParams(int Length, int Kernel, int Stride, int Dilation, bool Causal)
{
    /// <summary>The axis under test.</summary>
    public NeighborhoodAxis Axis => new(Length, Kernel, Dilation, Causal, Stride);

    /// <summary>The reference's answer for (q, k) on this axis.</summary>
    public bool Allows(int q, int k) =>
        NattenAxis.IsNeighbor(q, k, Length, Kernel, Stride, Dilation, Causal);

    /// <summary>Random valid axes of length 2..maxLength: dilation, kernel (odd and even) and
    /// stride drawn within NATTEN's limits, causal one time in two.</summary>
    public static Gen<AxisParams> Gen(int maxLength, int maxKernel, int maxDilation) =>
        from length in FsCheck.Fluent.Gen.Choose(2, maxLength)
        from dilation in FsCheck.Fluent.Gen.Choose(1, Math.Min(maxDilation, length / 2))
        from kernel in FsCheck.Fluent.Gen.Choose(2, Math.Min(maxKernel, length / dilation))
        from stride in FsCheck.Fluent.Gen.Choose(1, kernel)
        from causal in FsCheck.Fluent.Gen.Elements(false, true)
        select new AxisParams(length, kernel, stride, dilation, causal);

    /// <inheritdoc/>
    public override string ToString() =>
        $"L={Length} K={Kernel} s={Stride} d={Dilation}{(Causal ? " causal" : "")}";
}

/// <summary>
/// NeighborhoodAxis and the 1-D, 2-D and 3-D neighborhood masks against the independent
/// reimplementation of NATTEN's definitions (<see cref="NattenAxis"/>): every pair of tokens
/// of the grid, causal and not, with stride, dilation, even and odd kernels; and NATTEN's
/// argument checks.
/// </summary>
public sealed class NattenReferenceProperties
{
    [Property(MaxTest = 400)]
    public Property Mask1DMatchesNatten() =>
        Prop.ForAll(AxisParams.Gen(80, 20, 5).ToArbitrary(), a =>
        {
            var mask = new NeighborhoodMask1D(a.Axis);
            for (int q = 0; q < a.Length; q++)
                for (int k = 0; k < a.Length; k++)
                    if (mask.Allows(0, 0, q, k) != a.Allows(q, k))
                        Assert.Fail($"{a}: q={q} k={k}: NATTEN {a.Allows(q, k)}");
        });

    [Property(MaxTest = 150)]
    public Property Mask2DMatchesNatten() =>
        Prop.ForAll(AxisParams.Gen(14, 7, 3).ToArbitrary(), AxisParams.Gen(14, 7, 3).ToArbitrary(),
            (y, x) =>
        {
            var mask = new NeighborhoodMask2D(y.Axis, x.Axis);
            int count = y.Length * x.Length;
            for (int q = 0; q < count; q++)
                for (int k = 0; k < count; k++)
                {
                    bool natten = y.Allows(q / x.Length, k / x.Length)
                        && x.Allows(q % x.Length, k % x.Length);
                    if (mask.Allows(0, 0, q, k) != natten)
                        Assert.Fail($"rows {y}, columns {x}: q={q} k={k}: NATTEN {natten}");
                }
        });

    [Property(MaxTest = 60)]
    public Property Mask3DMatchesNatten() =>
        Prop.ForAll(AxisParams.Gen(6, 4, 2).ToArbitrary(), AxisParams.Gen(6, 4, 2).ToArbitrary(),
            AxisParams.Gen(7, 5, 2).ToArbitrary(), (z, y, x) =>
            {
                var mask = new NeighborhoodMask3D(z.Axis, y.Axis, x.Axis);
                int plane = y.Length * x.Length, count = z.Length * plane;
                for (int q = 0; q < count; q++)
                    for (int k = 0; k < count; k++)
                    {
                        bool natten = z.Allows(q / plane, k / plane)
                            && y.Allows(q % plane / x.Length, k % plane / x.Length)
                            && x.Allows(q % x.Length, k % x.Length);
                        if (mask.Allows(0, 0, q, k) != natten)
                            Assert.Fail($"{z} / {y} / {x}: q={q} k={k}: NATTEN {natten}");
                    }
            });

    /// <summary>The case of the defect report: L = 48, K = 6, s = 3, causal. NATTEN's leader of
    /// query 6 is query 8, so its keys are 3..6 (key 1 is not among them); all 2,304 pairs
    /// agree.</summary>
    [Fact]
    public void CausalStrideUsesTheLastQueryOfTheGroup()
    {
        var a = new AxisParams(48, 6, 3, 1, Causal: true);
        var mask = new NeighborhoodMask1D(48, 6, causal: true, stride: 3);
        Assert.False(mask.Allows(0, 0, 6, 1));
        Assert.True(mask.Allows(0, 0, 6, 3));
        Assert.False(mask.Allows(0, 0, 6, 2));
        int differ = 0;
        for (int q = 0; q < 48; q++)
            for (int k = 0; k < 48; k++)
                differ += mask.Allows(0, 0, q, k) != a.Allows(q, k) ? 1 : 0;
        Assert.Equal(0, differ);
    }

    /// <summary>Causal, dilated and strided: groups by i mod d, leader in group positions, and
    /// the last stride group clamped to the group's last member.</summary>
    [Fact]
    public void CausalStrideWithDilationWorksOnTheDilationGroups()
    {
        // L = 23, d = 2: group 0 has 12 members (0, 2, .., 22), group 1 has 11 (1, 3, .., 21).
        var axis = new NeighborhoodAxis(23, 4, dilation: 2, causal: true, stride: 3);
        // Query 14: group 0, position 7, stride group 6..8, leader 8; keys at positions 5..7.
        Assert.Equal(10, axis.Lo(14));
        Assert.Equal(14, axis.Hi(14));
        // Query 21: group 1, position 10 (the last), stride group 9..11 clamped to leader 10.
        Assert.Equal(1 + 2 * 7, axis.Lo(21));
        Assert.Equal(21, axis.Hi(21));
        for (int q = 0; q < 23; q++)
            for (int k = 0; k < 23; k++)
                Assert.Equal(NattenAxis.IsNeighbor(q, k, 23, 4, 3, 2, true), axis.Allows(q, k));
    }

    /// <summary>Every argument combination NATTEN rejects throws ArgumentException naming the
    /// parameter and its values; every one it accepts constructs.</summary>
    [Property(MaxTest = 500)]
    public Property ArgumentsAreCheckedAsNattenDoes() =>
        Prop.ForAll(
            (from length in Gen.Choose(1, 30) from kernel in Gen.Choose(0, 12)
             from stride in Gen.Choose(1, 12) from dilation in Gen.Choose(1, 5)
             select (length, kernel, stride, dilation)).ToArbitrary(), args =>
            {
                var (length, kernel, stride, dilation) = args;
                bool accepted = NattenAxis.Accepts(length, kernel, stride, dilation);
                string what = $"L={length} K={kernel} s={stride} d={dilation}";
                ArgumentException? error = null;
                try { _ = new NeighborhoodAxis(length, kernel, dilation, false, stride); }
                catch (ArgumentException e) { error = e; }
                if (accepted)
                {
                    Assert.True(error is null, $"{what}: accepted by NATTEN; {error?.Message}");
                    return;
                }
                Assert.True(error is not null, $"{what}: NATTEN rejects; the axis was built");
                Assert.True(error!.ParamName is "kernel" or "stride",
                    $"{what}: ParamName {error.ParamName}");
                int value = error.ParamName == "stride" ? stride : kernel;
                Assert.Contains($"{value}", error.Message);
            });

    /// <summary>The messages name both values of a broken limit.</summary>
    [Fact]
    public void RejectionsNameTheValues()
    {
        var stride = Assert.ThrowsAny<ArgumentException>(
            () => new NeighborhoodAxis(20, 3, stride: 4));
        Assert.Equal("stride", stride.ParamName);
        Assert.Contains("stride 4", stride.Message);
        Assert.Contains("kernel 3", stride.Message);
        var extent = Assert.ThrowsAny<ArgumentException>(
            () => new NeighborhoodAxis(10, 4, dilation: 3));
        Assert.Equal("kernel", extent.ParamName);
        Assert.Contains("kernel 4", extent.Message);
        Assert.Contains("dilation 3", extent.Message);
        Assert.Contains("extent 10", extent.Message);
        var one = Assert.ThrowsAny<ArgumentException>(() => new NeighborhoodMask1D(10, 1));
        Assert.Equal("kernel", one.ParamName);
        Assert.Contains("kernel 1", one.Message);
    }

    /// <summary>NATTEN takes even kernels: K = 4 non-causal puts 2 keys left of the centre and
    /// 1 right of it (window_left = K div 2, window_right = K div 2 - 1).</summary>
    [Fact]
    public void EvenKernelsFollowNatten()
    {
        var axis = new NeighborhoodAxis(10, 4);
        Assert.Equal(3, axis.Lo(5));
        Assert.Equal(6, axis.Hi(5));
        Assert.Equal(0, axis.Lo(0));
        Assert.Equal(3, axis.Hi(0));
        Assert.Equal(6, axis.Lo(9));
        Assert.Equal(9, axis.Hi(9));
    }
}
