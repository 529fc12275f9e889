using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Xunit;
using Xunit.Abstractions;

namespace Managed.Tests.Kernels;

/// <summary>
/// Block skipping comes from Classify: count the tiles of the CPU kernel's default tiling
/// (QueryTile 32 rows x KeyTile 64 keys) that each mask leaves to compute, and check they
/// fall as the mask's density says.
/// </summary>
public sealed class TileSkippingTests(ITestOutputHelper output)
{
    private static readonly int QueryTile = new AttentionTuning().QueryTile, KeyTile = new AttentionTuning().KeyTile;

    /// <summary>
    /// Causal window of W keys over N = 4096 (self-attention, positions 0..N-1). A query tile
    /// [q0, q0 + 32) needs keys [q0 - W + 1, q0 + 31]: W + 31 keys, so at most
    /// ceil((W + 31) / 64) + 1 key tiles and at least ceil((W + 31) / 64) away from the start.
    /// The total is thus about N/32 * (W/64 + 1), far below causal's N/32 * N/128, and grows
    /// with W.
    /// </summary>
    [Fact]
    public void CausalWindowTilesGrowWithTheWindow()
    {
        const int n = 4096;
        int qTiles = n / QueryTile;
        long causal = Count(default(CausalMask), n).NonEmpty;
        long previous = 0;
        foreach (int w in new[] { 1, 32, 64, 128, 256, 512, 1024, 2048 })
        {
            var (nonEmpty, full) = Count(SlidingWindowMask.Causal(w), n);
            int perTile = (w + 31 + KeyTile - 1) / KeyTile;
            output.WriteLine($"W={w,5}: {nonEmpty,6} non-empty tiles ({full} full) of {qTiles * (n / KeyTile)}; causal {causal}");
            Assert.InRange(nonEmpty, (long)(qTiles - (w + 31) / QueryTile - 1) * perTile, (long)qTiles * (perTile + 1));
            Assert.True(nonEmpty >= previous, $"W={w}: {nonEmpty} < {previous}");
            previous = nonEmpty;
        }
        Assert.True(Count(SlidingWindowMask.Causal(256), n).NonEmpty * 5 < causal);
        Assert.Equal(causal, Count(SlidingWindowMask.Causal(n), n).NonEmpty);
    }

    /// <summary>
    /// Tightness of every registry mask on the default tiling over 256 tokens: the share of
    /// truly empty tiles that Classify reports Empty and of truly full tiles it reports Full.
    /// The exact masks reach 100 %; the grid masks are only checked to skip most empty tiles.
    /// </summary>
    [Fact]
    public void RegistryMasksSkipMostEmptyTiles()
    {
        var visitor = new TightnessVisitor(output);
        foreach (var v in VariantRegistry.All) v.Accept(visitor);
    }

    private sealed class TightnessVisitor(ITestOutputHelper output) : IVariantVisitor
    {
        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer
        {
            const int n = 256;
            int empty = 0, emptyFound = 0, full = 0, fullFound = 0, tiles = 0;
            for (int h = 0; h < 4; h++)
                for (int q0 = 0; q0 < n; q0 += QueryTile)
                    for (int k0 = 0; k0 < n; k0 += KeyTile)
                    {
                        bool any = false, all = true;
                        for (int q = q0; q < q0 + QueryTile; q++)
                            for (int k = k0; k < k0 + KeyTile; k++)
                            {
                                bool a = mask.Allows(0, h, q, k);
                                any |= a;
                                all &= a;
                            }
                        var kind = mask.Classify(0, h, q0, q0 + QueryTile, k0, k0 + KeyTile);
                        tiles++;
                        if (!any) { empty++; emptyFound += kind == TileKind.Empty ? 1 : 0; }
                        if (all) { full++; fullFound += kind == TileKind.Full ? 1 : 0; }
                    }
            output.WriteLine($"{name,-22} empty {emptyFound,3}/{empty,-3} full {fullFound,3}/{full,-3} of {tiles}");
            Assert.True(emptyFound * 4 >= empty * 3, $"{name}: only {emptyFound} of {empty} empty tiles skipped");
        }
    }

    private static (long NonEmpty, long Full) Count<TMask>(TMask mask, int n) where TMask : struct, IMaskPredicate
    {
        long nonEmpty = 0, full = 0;
        for (int q0 = 0; q0 < n; q0 += QueryTile)
            for (int k0 = 0; k0 < n; k0 += KeyTile)
            {
                var kind = mask.Classify(0, 0, q0, q0 + QueryTile, k0, k0 + KeyTile);
                nonEmpty += kind != TileKind.Empty ? 1 : 0;
                full += kind == TileKind.Full ? 1 : 0;
            }
        return (nonEmpty, full);
    }
}
