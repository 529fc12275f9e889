using ILGPU.Algorithms;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Attention;

/// <summary>
/// The scan of a query block's key tiles the tensor-core prefill kernels share: the next tile
/// of the schedule that is in the mask's key range and not Empty for the block's rows. A mask
/// whose range has a gap (4 sinks and a window of 512 at query 16,000: about 240 Empty tiles
/// between them) would cost one Classify per tile of the gap, as much work as the tiles
/// computed; the scan gallops instead, asking Classify about 2, 4, 8, ... contiguous tiles at
/// once and halving on a hit, so a gap costs about 2 log2(gap) calls and a dense range one call
/// per tile, as before. Classify is exact or conservative on any rectangle (the CPU kernel
/// classifies tiles of any size), so the first non-Empty tile is the one a tile-by-tile scan
/// finds.
/// </summary>
internal static class KeyTileScan
{
    /// <summary>The next key tile from step <paramref name="step"/> on that is in the mask's
    /// range and not Empty for the rows [pos0, pos0 + rows) (advancing step to it), or -1.
    /// Group-uniform. Spans of several steps are tried only where the schedule's tiles are
    /// contiguous and ascending there.</summary>
    public static int Next<TSchedule, TMask>(TSchedule schedule, TMask mask, int b, int h,
        int pos0, int rows, int seqK, int firstTile, int endTile, int steps, ref int step,
        int blockK)
        where TSchedule : struct, IKeyTileSchedule
        where TMask : struct, IMaskPredicate
    {
        int span = 1;
        while (step < steps)
        {
            int tile = schedule.TileAt(b, h, firstTile, endTile, step);
            if (tile < firstTile || tile >= endTile)
            {
                step++;
                span = 1;
                continue;
            }
            int last = step + span - 1;
            if (span > 1 && (last >= steps || tile + span > endTile
                || schedule.TileAt(b, h, firstTile, endTile, last) != tile + span - 1))
            {
                span >>= 1; // the span leaves the range or the schedule's run: try less
                continue;
            }
            int k0 = tile * blockK, k1 = XMath.Min(seqK, (tile + span) * blockK);
            if (mask.Classify(b, h, pos0, pos0 + rows, k0, k1) != TileKind.Empty)
            {
                if (span == 1) return tile;
                span >>= 1; // something allowed in the span: look closer
                continue;
            }
            step += span;
            span <<= 1;
        }
        return -1;
    }
}
