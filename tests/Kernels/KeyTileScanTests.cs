using Managed.Kernels.Attention;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>
/// The galloping key-tile scan of the tensor-core prefill kernels gives exactly the tiles, in
/// the same order, that a tile-by-tile scan gives (each tile of the schedule in the mask's
/// range that Classify does not call Empty), over masks with gaps (sinks + window, strided,
/// power-of-two distances, radial frames, documents), dense ones, and contiguous and split
/// schedules, for query blocks all along the sequence.
/// </summary>
public sealed class KeyTileScanTests
{
    private const int BlockK = 64;

    [Theory]
    [InlineData(1, 0)]
    [InlineData(3, 1)]
    [InlineData(4, 3)]
    public void GallopFindsTheTilesOfATileByTileScan(int parts, int part)
    {
        foreach (int seqK in new[] { 1, 63, 64, 700, 5000, 16384 })
        {
            Same(new SinkWindowMask(4, 512), seqK, parts, part);
            Same(new SinkWindowMask(70, 100), seqK, parts, part);
            Same(SlidingWindowMask.Causal(300), seqK, parts, part);
            Same(default(CausalMask), seqK, parts, part);
            Same(default(NoMask), seqK, parts, part);
            Same(new StridedShardMask(700, 64), seqK, parts, part);
            Same(new PowerAttentionMask(64, 128), seqK, parts, part);
            Same(new RadialMask(8, 600, 1), seqK, parts, part);
            Same(new FixedDocumentMask(1000), seqK, parts, part);
        }
    }

    private static void Same<TMask>(TMask mask, int seqK, int parts, int part)
        where TMask : struct, IMaskPredicate
    {
        var schedule = new KeySplitSchedule(part, parts);
        for (int pos0 = 0; pos0 < seqK; pos0 += 64 * 7 + 13)
        {
            int rows = Math.Min(64, seqK - pos0);
            int kStart = Math.Max(0, mask.KeyStart(0, 0, pos0, pos0 + rows));
            int kEnd = Math.Min(seqK, mask.KeyEnd(0, 0, pos0, pos0 + rows));
            int first = kStart / BlockK, end = kEnd <= kStart ? 0 : (kEnd + BlockK - 1) / BlockK;
            int steps = end > first ? schedule.Steps(0, 0, first, end) : 0;
            var expected = new List<int>();
            for (int step = 0; step < steps; step++)
            {
                int tile = schedule.TileAt(0, 0, first, end, step);
                if (tile < first || tile >= end) continue;
                int k0 = tile * BlockK;
                if (mask.Classify(0, 0, pos0, pos0 + rows, k0, Math.Min(seqK, k0 + BlockK))
                    != TileKind.Empty)
                    expected.Add(tile);
            }
            var found = new List<int>();
            for (int step = 0; ; step++)
            {
                int tile = KeyTileScan.Next(schedule, mask, 0, 0, pos0, rows, seqK, first, end,
                    steps, ref step, BlockK);
                if (tile < 0) break;
                found.Add(tile);
            }
            Assert.True(expected.SequenceEqual(found), $"{typeof(TMask).Name} seqK {seqK} "
                + $"rows {pos0}+{rows} part {part}/{parts}: expected [{string.Join(",", expected)}]"
                + $", got [{string.Join(",", found)}]");
        }
    }
}
