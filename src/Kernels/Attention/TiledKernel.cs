using ILGPU;
using ILGPU.Algorithms;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Attention;

/// <summary>The tiled flash-attention kernel for ILGPU (CUDA, OpenCL, ILGPU's CPU accelerator).</summary>
internal static class TiledKernel
{
    /// <summary>
    /// One group per (batch, head, query tile). Q (scaled) stays in shared memory; K and V tiles
    /// stream through one shared buffer; each thread keeps its score micro-tile, the running
    /// max/sum of its rows and its slice of O in registers; P goes through shared memory.
    /// Every branch around a barrier depends only on the group's tile, so barriers stay uniform.
    /// </summary>
    public static void ForwardKernel<TElement, TStorage, TScore, TMask, TNorm, TSchedule, TTile,
        TReduce>(
        ArrayView<TStorage> query, ArrayView<TStorage> key, ArrayView<TStorage> value,
        ArrayView<float> output, ArrayView<float> logSumExp, ArrayView<float> rowStats,
        ArrayView<int> keyLengths, GpuAttentionParams p, TScore score, TMask mask, TNorm norm,
        TSchedule schedule)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
        where TTile : struct, IGpuTile
        where TReduce : struct, IRowReduction
    {
        int bq = TTile.BlockQ, bk = TTile.BlockK, sr = TTile.RowsPerThread, sc = TTile.KeysPerThread;
        int tr = bq / sr, tcN = bk / sc, threads = tr * tcN, oc = TTile.MaxDim / tcN;
        int qStride = bq + 1, kStride = bk + 1;

        // (MaxDim, BlockQ + 1): Q transposed, padded against bank conflicts
        var qs = SharedMemory.Allocate<float>(TTile.MaxDim * (TTile.BlockQ + 1));
        // K as (MaxDim, BlockK + 1), then V as (BlockK, MaxDim)
        var kv = SharedMemory.Allocate<float>(TTile.MaxDim * (TTile.BlockK + 1));
        // (BlockK, BlockQ + 1): P transposed
        var ps = SharedMemory.Allocate<float>(TTile.BlockK * (TTile.BlockQ + 1));
        // (RowsPerThread * BlockQ / RowsPerThread, BlockK / KeysPerThread) partials
        var red = SharedMemory.Allocate<float>(TTile.BlockQ * (TTile.BlockK / TTile.KeysPerThread));
        var acc = LocalMemory.Allocate<float>(TTile.RowsPerThread * (TTile.MaxDim / (TTile.BlockK / TTile.KeysPerThread)));
        var s = LocalMemory.Allocate<float>(TTile.RowsPerThread * TTile.KeysPerThread);
        var m = LocalMemory.Allocate<float>(TTile.RowsPerThread);
        var l = LocalMemory.Allocate<float>(TTile.RowsPerThread);
        var kReg = LocalMemory.Allocate<float>(TTile.KeysPerThread);

        int tid = Group.IdxX, rowT = tid / tcN, colT = tid % tcN;
        int blk = Grid.IdxX;
        int bh = blk / p.QueryTiles;
        int qt = p.QueryTiles - 1 - blk % p.QueryTiles; // heaviest causal tiles first
        int b = bh / p.Heads, h = bh % p.Heads, kvh = h / p.GroupSize;
        int seqK = p.KeysOf(keyLengths, b);
        int q0 = qt * bq, rows = XMath.Min(bq, p.SeqQ - q0), pos0 = q0 + p.QueryOffsetOf(seqK);
        int d = p.HeadDim, dv = p.ValueDim;
        long lseRow0 = (long)bh * p.SeqQ + q0;
        // Views (64-bit offsets) are made where a loop starts, not kept live across the key loop.
        var qTile = p.QueryRows(query, b, h, q0);

        for (int e = tid; e < bq * d; e += threads)
        {
            int r = e / d, c = e - r * d;
            qs[c * qStride + r] = r < rows
                ? TElement.ToSingle(qTile[r * p.QRow + c]) * p.Scale : 0f;
        }
        // m: the running max (softmax) or the normalizer's row parameter.
        for (int i = 0; i < sr; i++)
        {
            int r = rowT + tr * i;
            float stat = TNorm.NeedsLogSumExp && r < rows ? rowStats[lseRow0 + r] : 0f;
            m[i] = TNorm.IsSoftmax ? float.NegativeInfinity : norm.RowParameter(pos0 + r, stat);
            l[i] = 0f;
        }
        for (int a = 0; a < sr * oc; a++) acc[a] = 0f;
        Group.Barrier();

        // Only the key tiles the mask's key range can reach; group-uniform, like Classify.
        int kStart = XMath.Max(0, mask.KeyStart(b, h, pos0, pos0 + rows));
        int kEnd = XMath.Min(seqK, mask.KeyEnd(b, h, pos0, pos0 + rows));
        int firstTile = kStart / bk, endTile = kEnd <= kStart ? 0 : (kEnd + bk - 1) / bk;
        // The schedule picks the tiles and their order; group-uniform as well.
        int steps = endTile > firstTile ? schedule.Steps(b, h, firstTile, endTile) : 0;
        for (int step = 0; step < steps; step++)
        {
            int tile = schedule.TileAt(b, h, firstTile, endTile, step);
            if (tile < firstTile || tile >= endTile) continue;
            int k0 = tile * bk, cols = XMath.Min(bk, seqK - k0);
            var kTile = p.KeyRows(key, b, kvh, k0);
            var kind = mask.Classify(b, h, pos0, pos0 + rows, k0, k0 + cols);
            if (kind == TileKind.Empty) continue; // uniform across the group

            for (int e = tid; e < bk * d; e += threads)
            {
                int j = e / d, c = e - j * d;
                kv[c * kStride + j] = j < cols ? TElement.ToSingle(kTile[j * p.KRow + c]) : 0f;
            }
            Group.Barrier();

            for (int a = 0; a < sr * sc; a++) s[a] = 0f;
            for (int c = 0; c < d; c++)
            {
                for (int j = 0; j < sc; j++) kReg[j] = kv[c * kStride + colT + tcN * j];
                for (int i = 0; i < sr; i++)
                {
                    float qv = qs[c * qStride + rowT + tr * i];
                    for (int j = 0; j < sc; j++) s[i * sc + j] += qv * kReg[j];
                }
            }

            for (int i = 0; i < sr; i++)
            {
                int r = rowT + tr * i, pos = pos0 + r;
                int rowStart = GpuMask.RowStart(mask, b, h, pos), rowEnd = GpuMask.RowEnd(mask, b, h, pos);
                float rowMax = float.NegativeInfinity;
                for (int j = 0; j < sc; j++)
                {
                    int kk = k0 + colT + tcN * j;
                    bool allowed = kk < seqK && r < rows
                        && (kind == TileKind.Full || GpuMask.Allows(mask, b, h, pos, kk, rowStart, rowEnd));
                    float x = allowed ? score.Apply(s[i * sc + j], b, h, pos, kk) : float.NegativeInfinity;
                    s[i * sc + j] = x;
                    rowMax = XMath.Max(rowMax, x);
                }
                if (!TNorm.IsSoftmax) continue; // elementwise weights: no running max
                // New running max m'; O and l are rescaled by exp(m - m'). A row with no
                // allowed key so far keeps m = -inf and must not produce exp(-inf + inf).
                float mOld = m[i];
                float mNew = XMath.Max(mOld, ReduceMax<TReduce>(rowMax, red, i * tr + rowT, colT, tcN));
                float alpha = mNew == float.NegativeInfinity ? 1f : XMath.Exp(mOld - mNew);
                l[i] *= alpha;
                for (int c = 0; c < oc; c++) acc[i * oc + c] *= alpha;
                m[i] = mNew;
            }

            for (int i = 0; i < sr; i++)
            {
                int r = rowT + tr * i;
                float mi = m[i], rowSum = 0f;
                for (int j = 0; j < sc; j++)
                {
                    float x = s[i * sc + j];
                    float e = !TNorm.IsSoftmax ? norm.Weight(x, mi)
                        : x == float.NegativeInfinity ? 0f : XMath.Exp(x - mi);
                    rowSum += e;
                    ps[(colT + tcN * j) * qStride + r] = e;
                }
                l[i] += RowSum<TReduce>(rowSum, red, i * tr + rowT, colT, tcN);
            }
            Group.Barrier(); // K tile fully read, P complete

            var vTile = p.ValueRows(value, b, kvh, k0);
            for (int e = tid; e < bk * dv; e += threads)
            {
                int j = e / dv, c = e - j * dv;
                kv[e] = j < cols ? TElement.ToSingle(vTile[j * p.VRow + c]) : 0f;
            }
            Group.Barrier();

            for (int j = 0; j < bk; j++)
            {
                for (int i = 0; i < sr; i++)
                {
                    float pv = ps[j * qStride + rowT + tr * i];
                    for (int c = 0; c < oc; c++)
                    {
                        int col = colT + tcN * c;
                        if (col < dv) acc[i * oc + c] += pv * kv[j * dv + col];
                    }
                }
            }
            Group.Barrier(); // before the next tile overwrites kv and ps
        }

        var oTile = p.OutputRows(output, b, h, q0);
        for (int i = 0; i < sr; i++)
        {
            int r = rowT + tr * i;
            if (r >= rows) continue;
            float li = l[i];
            // No weight (softmax: no allowed key): zeros and -infinity; a NaN sum stays NaN.
            float inv = !TNorm.DividesBySum ? 1f : li == 0f ? 0f : 1f / li;
            int oRow = r * p.ORow;
            for (int c = 0; c < oc; c++)
            {
                int col = colT + tcN * c;
                // A subnormal l (softplus) overflows 1/l: divide instead.
                if (col < dv) oTile[oRow + col] = inv == float.PositiveInfinity ? acc[i * oc + c] / li : acc[i * oc + c] * inv;
            }
            if (colT == 0 && p.HasLogSumExp != 0)
                logSumExp[lseRow0 + r] = li == 0f ? float.NegativeInfinity
                    : TNorm.IsSoftmax ? m[i] + XMath.Log(li) : XMath.Log(li);
        }
    }

    private static float ReduceMax<TReduce>(float v, ArrayView<float> red, int slot, int colT, int tcN)
        where TReduce : struct, IRowReduction
    {
        if (TReduce.UsesShuffle)
        {
            for (int off = tcN / 2; off > 0; off /= 2) v = XMath.Max(v, Warp.ShuffleXor(v, off));
            return v;
        }
        red[slot * tcN + colT] = v;
        Group.Barrier();
        float r = red[slot * tcN];
        for (int c = 1; c < tcN; c++) r = XMath.Max(r, red[slot * tcN + c]);
        Group.Barrier();
        return r;
    }

    private static float RowSum<TReduce>(float v, ArrayView<float> red, int slot, int colT, int tcN)
        where TReduce : struct, IRowReduction
    {
        if (TReduce.UsesShuffle)
        {
            for (int off = tcN / 2; off > 0; off /= 2) v += Warp.ShuffleXor(v, off);
            return v;
        }
        red[slot * tcN + colT] = v;
        Group.Barrier();
        float r = 0f;
        for (int c = 0; c < tcN; c++) r += red[slot * tcN + c];
        Group.Barrier();
        return r;
    }
}
