using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Variants;

/// <summary>
/// The catalog's identities as pairwise predicate equalities over a window of positions
/// (negative query positions included), and NATTEN's window rule against its own formula.
/// </summary>
public sealed class MaskIdentityProperties
{
    private const int Lo = -40, Hi = 260;

    [Property(MaxTest = 100)]
    public Property AndWithNoMaskIsTheMask() =>
        Prop.ForAll(MaskGen.Neighborhood2D.ToArbitrary(), MaskGen.SinkWindow.ToArbitrary(), (m, s) =>
        {
            AssertSame(new And<NeighborhoodMask2D, NoMask>(m, default), m, 1, classify: true);
            AssertSame(new And<NoMask, SinkWindowMask>(default, s), s, 2, classify: true);
        });

    [Property(MaxTest = 100)]
    public Property OrWithNotIsEverything() =>
        Prop.ForAll(MaskGen.Neighborhood1D.ToArbitrary(), MaskGen.Radial.ToArbitrary(), (m, r) =>
        {
            AssertSame(new Or<NeighborhoodMask1D, Not<NeighborhoodMask1D>>(m, new(m)), default(NoMask), 0);
            AssertSame(new Or<Not<RadialMask>, RadialMask>(new(r), r), default(NoMask), 3);
        });

    /// <summary>Window extents &gt;= every |q - k| in range: no mask.</summary>
    [Property(MaxTest = 20)]
    public Property WideWindowIsNoMask() =>
        Prop.ForAll(Gen.Choose(Hi - Lo + 100, 10 * Hi).ToArbitrary(), w =>
        {
            AssertSame(new SlidingWindowMask(w, w), default(NoMask), 0, classify: true);
            AssertSame(SlidingWindowMask.Causal(w), default(CausalMask), 0, classify: true);
            AssertSame(new SinkWindowMask(0, w), default(CausalMask), 0);
            AssertSame(new MoaMask(3, w, w, w), default(CausalMask), 5);
        });

    /// <summary>GNA with stride 1 is plain neighborhood attention; non-causal NA with dilation 1
    /// and kernel K = L (the largest NATTEN accepts) allows every pair on the axis, at any
    /// stride.</summary>
    [Property(MaxTest = 200)]
    public Property StrideOneIsPlainNeighborhood() =>
        Prop.ForAll(MaskGen.Axis(200, 17, 4, 1).ToArbitrary(), Gen.Choose(0, 8).ToArbitrary(), (a, extra) =>
        {
            var strided = new NeighborhoodAxis(a.Extent, a.Kernel, a.Dilation, a.IsCausal, stride: 1);
            for (int i = 0; i < a.Extent; i++)
                for (int j = 0; j < a.Extent; j++)
                    Assert.Equal(a.Allows(i, j), strided.Allows(i, j));
            var wide = new NeighborhoodMask1D(a.Extent, a.Extent, stride: 1 + extra % a.Extent);
            AssertSame(wide, new GridMask(a.Extent), 0);
        });

    /// <summary>NATTEN's get_window_start (non-causal, L &gt;= K d, odd K) and its window end
    /// start + (K - 1) d: the axis' Lo and Hi.</summary>
    [Property(MaxTest = 300)]
    public Property NeighborhoodMatchesNattenWindowStart() =>
        Prop.ForAll(Gen.Choose(1, 8).ToArbitrary(), Gen.Choose(1, 4).ToArbitrary(), Gen.Choose(0, 60).ToArbitrary(),
            (half, dilation, extra) =>
            {
                int k = 2 * half + 1, length = k * dilation + extra;
                var axis = new NeighborhoodAxis(length, k, dilation);
                for (int i = 0; i < length; i++)
                {
                    int start = NattenWindowStart(i, length, k, half, dilation);
                    Assert.True(axis.Lo(i) == start && axis.Hi(i) == start + (k - 1) * dilation,
                        $"L={length} K={k} d={dilation} i={i}: [{axis.Lo(i)}, {axis.Hi(i)}], NATTEN start {start}");
                }
            });

    /// <summary>Every query on a non-causal axis sees exactly min(K, L_r) keys (NATTEN's
    /// "exactly k per axis"), and a 2-D grid query the product of its axes'.</summary>
    [Property(MaxTest = 100)]
    public Property NonCausalNeighborhoodSeesKPerAxis() =>
        Prop.ForAll(MaskGen.Axis(40, 9, 3, 1).ToArbitrary(), MaskGen.Axis(30, 9, 3, 1).ToArbitrary(), (y, x) =>
        {
            y = new NeighborhoodAxis(y.Extent, y.Kernel, y.Dilation);
            x = new NeighborhoodAxis(x.Extent, x.Kernel, x.Dilation);
            var m = new NeighborhoodMask2D(y, x);
            for (int q = 0; q < m.Count; q++)
            {
                int seen = 0;
                for (int k = 0; k < m.Count; k++) seen += m.Allows(0, 0, q, k) ? 1 : 0;
                int qy = q / x.Extent, qx = q % x.Extent;
                int expected = Math.Min(y.Kernel, (y.Extent - qy % y.Dilation + y.Dilation - 1) / y.Dilation)
                    * Math.Min(x.Kernel, (x.Extent - qx % x.Dilation + x.Dilation - 1) / x.Dilation);
                Assert.Equal(expected, seen);
            }
        });

    /// <summary>S2 with stride 1, PowerAttention with a local band wider than the sequence and
    /// DuoAttention with every head retrieval: causal attention.</summary>
    [Property(MaxTest = 50)]
    public Property DegenerateSparseMasksAreCausal() =>
        Prop.ForAll(Gen.Choose(0, 40).ToArbitrary(), Gen.Choose(1, 16).ToArbitrary(), (local, block) =>
        {
            for (int h = 0; h < 8; h++)
            {
                AssertSame(new StridedShardMask(1, local), default(CausalMask), h, classify: true);
                AssertSame(new PowerAttentionMask(block, Hi + 1), default(CausalMask), h);
                AssertSame(new DuoAttentionMask(ulong.MaxValue, local, block), default(CausalMask), h, classify: true);
            }
        });

    /// <summary>The union of the S2 shards of s consecutive heads is the causal mask.</summary>
    [Property(MaxTest = 50)]
    public Property StridedShardsCoverCausal() =>
        Prop.ForAll(MaskGen.StridedShard.ToArbitrary(), Gen.Choose(0, 10).ToArbitrary(), (m, h0) =>
        {
            for (int q = Lo; q < Hi; q += 3)
                for (int k = 0; k < Hi; k++)
                {
                    bool any = false;
                    for (int h = h0; h < h0 + 6; h++) any |= m.Allows(0, h, q, k);
                    Assert.Equal(k <= q, any);
                }
        });

    /// <summary>Radial with a window wider than the frame at every band it reaches: all pairs
    /// of the video.</summary>
    [Fact]
    public void RadialWithoutDecayIsEverythingOnTheVideo()
    {
        var m = new RadialMask(4, 10, 10 << 3);
        AssertSame(m, new GridMask(40), 0);
    }

    private static void AssertSame<TA, TB>(TA a, TB b, int head, bool classify = false)
        where TA : struct, IMaskPredicate where TB : struct, IMaskPredicate
    {
        for (int q = Lo; q < Hi; q++)
            for (int k = 0; k < Hi; k++)
                if (a.Allows(0, head, q, k) != b.Allows(0, head, q, k))
                    Assert.Fail($"{typeof(TA).Name} vs {typeof(TB).Name}: differ at h={head} q={q} k={k}");
        if (!classify) return;
        for (int q0 = Lo; q0 < Hi; q0 += 32)
            for (int k0 = 0; k0 < Hi; k0 += 64)
                Assert.Equal(b.Classify(0, head, q0, q0 + 32, k0, k0 + 64), a.Classify(0, head, q0, q0 + 32, k0, k0 + 64));
    }

    /// <summary>NATTEN's get_window_start (csrc natten_commons / reference helpers).</summary>
    private static int NattenWindowStart(int index, int length, int kernel, int half, int dilation)
    {
        if (dilation <= 1)
            return Math.Max(index - half, 0) + (index + half >= length ? length - index - half - 1 : 0);
        int ni = index - half * dilation;
        if (ni < 0) return index % dilation;
        if (index + half * dilation >= length)
        {
            int imodd = index % dilation, a = length / dilation * dilation, b = length - a;
            return imodd < b ? length - b + imodd - 2 * half * dilation : a + imodd - kernel * dilation;
        }
        return ni;
    }
}

/// <summary>Every pair of tokens 0..count-1: (uint)q &lt; count and (uint)k &lt; count.</summary>
internal readonly struct GridMask(int count) : IMaskPredicate
{
    /// <summary>q, k in [0, count)</summary>
    public bool Allows(int batch, int head, int q, int k) => (uint)q < (uint)count && (uint)k < (uint)count;

    /// <summary>Partial (tests only compare Allows).</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) => TileKind.Partial;

    /// <summary>0 (no bound)</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>No bound.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => int.MaxValue;
}
