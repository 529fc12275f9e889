using ILGPU;
using Managed.Kernels.Decode;
using Managed.Kernels.Layouts;
using Managed.Kernels.TensorCores;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Attention;

/// <summary>
/// The steps the tensor-core prefill kernels share (<see cref="MmaPrefillKernel"/> for fp16
/// and bf16, <see cref="MmaTf32PrefillKernel"/> for tf32): the next key tile of the schedule,
/// a 64-key tile's cp.async copy into shared memory, a pair's masked logit and its softmax
/// weight. Written once over <see cref="IMmaCore"/>; the kernels' generators emit calls to them.
/// </summary>
internal static class MmaPrefillSteps
{
    /// <summary>Keys per tile, as in <see cref="RegisterTiledKernel"/>: the schedules' and the
    /// masks' tiles mean the same in every kernel.</summary>
    public const int BlockK = 64;

    /// <summary>log2 e: exp(s - m) = 2^(s log2 e - m log2 e), one fused multiply-add and one
    /// ex2 per score.</summary>
    public const float Log2E = 1.44269504f;

    /// <summary>The next key tile from step <paramref name="step"/> on that is in the mask's
    /// range and not Empty for the group's rows (advancing step to it), or -1. Group-uniform;
    /// a masked gap is galloped over (<see cref="KeyTileScan"/>).</summary>
    public static int NextTile<TSchedule, TMask>(TSchedule schedule, TMask mask, int b, int h,
        int pos0, int rows, int seqK, int firstTile, int endTile, int steps, ref int step)
        where TSchedule : struct, IKeyTileSchedule
        where TMask : struct, IMaskPredicate
        => KeyTileScan.Next(schedule, mask, b, h, pos0, rows, seqK, firstTile, endTile, steps,
            ref step, BlockK);

    /// <summary>The shift that rounds <paramref name="chunks"/> up to the 8, 16 or 32 lanes
    /// that copy one row of a tile (<see cref="CopyTile"/>).</summary>
    public static int RowLanesShift(int chunks) => chunks <= 8 ? 3 : chunks <= 16 ? 4 : 5;

    /// <summary>Rows k0..k0+63 of K or V ((b, kvh) rows from <paramref name="row0"/>,
    /// <paramref name="chunks"/> 16-byte chunks each) into the buffer at
    /// <paramref name="at"/> with rows <paramref name="stride"/> chunks apart, by cp.async;
    /// rows past seqK are zeros. Lane i of a row's 8, 16 or 32 (the chunks rounded up,
    /// <see cref="RowLanesShift"/>) copies chunk i of every (threads / that)-th row: a fixed
    /// number of iterations of a few instructions each, no division (a thread past the row's
    /// chunks idles).</summary>
    public static void CopyTile<TCore>(ArrayView<Word4> shared, int at, int stride,
        ArrayView<Word4> words, long address, long row0, int k0, int seqK, int chunks,
        int threads)
        where TCore : struct, IMmaCore
    {
        int shift = RowLanesShift(chunks);
        int c = Group.IdxX & ((1 << shift) - 1), rowStep = threads >> shift;
        if (c >= chunks) return;
        int r = Group.IdxX >> shift, to = at + r * stride + c;
        long from = (row0 + k0 + r) * chunks + c;
        for (; r < BlockK; r += rowStep)
        {
            bool inRange = k0 + r < seqK; // else chunk 0 as a valid address: nothing is read
            TCore.CopyAsync(shared, to, words, address, inRange ? from : 0, inRange);
            to += rowStep * stride;
            from += rowStep * chunks;
        }
    }

    /// <summary>The modified logit of an allowed pair, -inf for a masked or padded one. The
    /// tests are combined with non-short-circuit operators and the result selected, so the
    /// pair costs a few predicate instructions and no branch (ILGPU turns &amp;&amp; and ?: over
    /// calls into branches, each with its own convergence barrier).</summary>
    public static float Logit<TScore, TMask>(float s, TileKind kind, TScore score, TMask mask,
        int b, int h, int pos, int k, int seqK, int rowStart, int rowEnd)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
    {
        bool allowed = TMask.RowIsInterval ? (k >= rowStart) & (k < rowEnd)
            : kind == TileKind.Full | mask.Allows(b, h, pos, k);
        float logit = score.Apply(s, b, h, pos, k);
        return (k < seqK) & allowed ? logit : float.NegativeInfinity;
    }

    /// <summary>exp(s - m) as 2^(s log2 e - <paramref name="scaledMax"/>), where scaledMax is
    /// m log2 e, or 0 for a row with no allowed key yet: a masked logit (-inf) gives exactly 0
    /// with no test of its own (ex2(-inf) = +0), and a row masked so far gives zeros, not NaN.
    /// ex2.approx.ftz on CUDA (<see cref="IMmaCore.Exp2"/>).</summary>
    public static float Prob<TCore>(float s, float scaledMax) where TCore : struct, IMmaCore =>
        TCore.Exp2(s * Log2E - scaledMax);
}
