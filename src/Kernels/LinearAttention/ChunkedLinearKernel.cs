using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Algorithms;
using Managed.Kernels.Matmul;

namespace Managed.Kernels.LinearAttention;

/// <summary>The sizes of one segment of chunked linear-attention launches.</summary>
internal readonly struct ChunkedParams(LinearAttentionShape shape, int chunk, bool causal,
    bool normalize, int firstChunk, int segmentChunks)
{
    public readonly int Items = shape.Batch * shape.KvHeads, Heads = shape.Heads,
        KvHeads = shape.KvHeads, Length = shape.Length,
        Features = shape.Features, ValueDim = shape.ValueDim, Chunk = chunk,
        Causal = causal ? 1 : 0, Normalize = normalize ? 1 : 0, FirstChunk = firstChunk,
        SegmentChunks = segmentChunks,
        FeatureTiles = (shape.Features + ChunkedLinearKernel.Tile - 1) / ChunkedLinearKernel.Tile,
        ValueTiles = (shape.ValueDim + ChunkedLinearKernel.Tile - 1) / ChunkedLinearKernel.Tile;
}

/// <summary>
/// Chunked linear attention as Lightning Attention-2 parallelizes it, in three launches per
/// segment of chunks (all chunks in flight at once, none waiting for the previous one):
/// <see cref="ChunkStates"/>: each chunk's own state K_m^T V_m (features x valueDim, keys
/// weighted by lambda^(len-1-j)) and key sum; <see cref="ScanStates"/>: one thread per state
/// element turns them into the state before each chunk (an exclusive prefix over the chunks,
/// decayed by lambda^len per chunk, starting from the carried state, which it leaves after the
/// last chunk); <see cref="ChunkOutputs"/>: per (query head, chunk)
/// O = (Q K^T * mask * decay) V + lambda^(i+1) Q S_m, divided by the same sums of weights when
/// normalized (the scores once per chunk, for every value tile). Every product is a 64 x 64 tile of a group of 128 threads, each accumulating
/// 8 x 4 outputs from 64 x 16 operand blocks staged in shared memory (as
/// <see cref="GemmKernel"/>). Non-causal calls scan every chunk first, then read the total.
/// </summary>
internal static class ChunkedLinearKernel
{
    public const int Threads = TileStaging.Threads, Tile = TileStaging.Tile,
        Depth = TileStaging.Depth;
    // Depth-major operand rows of 64 floats padded to 68: 16-byte aligned, and the stores of
    // transposed staging spread over banks.
    private const int Pitch = TileStaging.Pitch;

    /// <summary>Chunk m's state and key sum. Grid: (sequence x KV head, chunk of the segment,
    /// feature tile, value tile).</summary>
    public static void ChunkStates(ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> logDecay, ArrayView<float> chunkS, ArrayView<float> chunkZ,
        ChunkedParams p)
    {
        var ks = SharedMemory.Allocate<Row4>(Depth * Pitch / 4);
        var vs = SharedMemory.Allocate<Row4>(Depth * Pitch / 4);
        var kf = ks.Cast<float>();
        var vf = vs.Cast<float>();
        int tid = Group.IdxX, row0 = tid / 16 * 8, col0 = tid % 16 * 4;
        int blk = Grid.IdxX;
        int ct = blk % p.ValueTiles;
        blk /= p.ValueTiles;
        int ft = blk % p.FeatureTiles;
        blk /= p.FeatureTiles;
        int ms = blk % p.SegmentChunks, item = blk / p.SegmentChunks;
        int f = p.Features, dv = p.ValueDim, n = p.Length;
        int t0 = (p.FirstChunk + ms) * p.Chunk, len = XMath.Min(p.Chunk, n - t0);
        int f0 = ft * Tile, c0 = ct * Tile;
        float logLambda = logDecay[item % p.KvHeads];
        long kRows = (long)item * n * f, vRows = (long)item * n * dv;
        Row4 r0 = default, r1 = default, r2 = default, r3 = default;
        Row4 r4 = default, r5 = default, r6 = default, r7 = default;
        float keySum = 0f;
        // K^T (features x tokens) and V (tokens x columns), token-major as stored; the next
        // slice's loads are issued before this one is multiplied.
        var nextK = TileStaging.DepthAlongRows(key, kRows + (long)t0 * f, f, len, 0, f, f0, tid);
        var nextV = TileStaging.DepthAlongRows(value, vRows + (long)t0 * dv, dv, len, 0, dv, c0, tid);
        for (int j0 = 0; j0 < len; j0 += Depth)
        {
            TileStaging.StoreDepthAlongRows(kf, Decayed(nextK, logLambda, len, j0, tid), tid);
            TileStaging.StoreDepthAlongRows(vf, nextV, tid);
            Group.Barrier();
            if (j0 + Depth < len)
            {
                nextK = TileStaging.DepthAlongRows(key, kRows + (long)t0 * f, f, len, j0 + Depth,
                    f, f0, tid);
                nextV = TileStaging.DepthAlongRows(value, vRows + (long)t0 * dv, dv, len,
                    j0 + Depth, dv, c0, tid);
            }
            Product(ks, 0, vs, row0, col0, ref r0, ref r1, ref r2, ref r3, ref r4, ref r5,
                ref r6, ref r7);
            // The key sum of feature tid (the value tile 0 groups only).
            if (ct == 0 && tid < Tile)
                for (int kk = 0; kk < Depth; kk++) keySum += kf[kk * Pitch + tid];
            Group.Barrier();
        }
        if (ct == 0 && tid < Tile && f0 + tid < f) chunkZ[ZIndex(p, item, ms, f0 + tid)] = keySum;
        long baseS = ((long)item * p.SegmentChunks + ms) * f * dv;
        StoreState(chunkS, baseS, f, dv, f0 + row0, c0 + col0, r0);
        StoreState(chunkS, baseS, f, dv, f0 + row0 + 1, c0 + col0, r1);
        StoreState(chunkS, baseS, f, dv, f0 + row0 + 2, c0 + col0, r2);
        StoreState(chunkS, baseS, f, dv, f0 + row0 + 3, c0 + col0, r3);
        StoreState(chunkS, baseS, f, dv, f0 + row0 + 4, c0 + col0, r4);
        StoreState(chunkS, baseS, f, dv, f0 + row0 + 5, c0 + col0, r5);
        StoreState(chunkS, baseS, f, dv, f0 + row0 + 6, c0 + col0, r6);
        StoreState(chunkS, baseS, f, dv, f0 + row0 + 7, c0 + col0, r7);
    }

    /// <summary>One thread per element of the state (S, then z as column valueDim): the
    /// chunk states of the segment become the state before each chunk (causal), and the
    /// carried state advances past the segment.</summary>
    public static void ScanStates(ArrayView<float> logDecay, ArrayView<float> chunkS,
        ArrayView<float> chunkZ, ArrayView<float> stateS, ArrayView<float> stateZ,
        ChunkedParams p)
    {
        long e = (long)Grid.IdxX * Threads + Group.IdxX;
        int f = p.Features, dv = p.ValueDim, width = dv + 1;
        long perItem = (long)f * width;
        int item = (int)(e / perItem);
        if (item >= p.Items) return;
        int rest = (int)(e - item * perItem), x = rest / width, c = rest - x * width;
        bool isZ = c == dv;
        float logLambda = logDecay[item % p.KvHeads];
        long carried = isZ ? (long)item * f + x : ((long)item * f + x) * dv + c;
        float running = isZ ? stateZ[carried] : stateS[carried];
        // Sixteen chunks at a time, their loads issued before the dependent updates: the
        // loop is a chain of one multiply-add per chunk, bound by memory latency otherwise.
        for (int m0 = 0; m0 < p.SegmentChunks; m0 += 16)
        {
            float own0 = Own(chunkS, chunkZ, p, item, m0, x, c, isZ);
            float own1 = Own(chunkS, chunkZ, p, item, m0 + 1, x, c, isZ);
            float own2 = Own(chunkS, chunkZ, p, item, m0 + 2, x, c, isZ);
            float own3 = Own(chunkS, chunkZ, p, item, m0 + 3, x, c, isZ);
            float own4 = Own(chunkS, chunkZ, p, item, m0 + 4, x, c, isZ);
            float own5 = Own(chunkS, chunkZ, p, item, m0 + 5, x, c, isZ);
            float own6 = Own(chunkS, chunkZ, p, item, m0 + 6, x, c, isZ);
            float own7 = Own(chunkS, chunkZ, p, item, m0 + 7, x, c, isZ);
            float own8 = Own(chunkS, chunkZ, p, item, m0 + 8, x, c, isZ);
            float own9 = Own(chunkS, chunkZ, p, item, m0 + 9, x, c, isZ);
            float own10 = Own(chunkS, chunkZ, p, item, m0 + 10, x, c, isZ);
            float own11 = Own(chunkS, chunkZ, p, item, m0 + 11, x, c, isZ);
            float own12 = Own(chunkS, chunkZ, p, item, m0 + 12, x, c, isZ);
            float own13 = Own(chunkS, chunkZ, p, item, m0 + 13, x, c, isZ);
            float own14 = Own(chunkS, chunkZ, p, item, m0 + 14, x, c, isZ);
            float own15 = Own(chunkS, chunkZ, p, item, m0 + 15, x, c, isZ);
            running = Advance(chunkS, chunkZ, p, item, m0, x, c, isZ, logLambda,
                running, own0);
            running = Advance(chunkS, chunkZ, p, item, m0 + 1, x, c, isZ, logLambda,
                running, own1);
            running = Advance(chunkS, chunkZ, p, item, m0 + 2, x, c, isZ, logLambda,
                running, own2);
            running = Advance(chunkS, chunkZ, p, item, m0 + 3, x, c, isZ, logLambda,
                running, own3);
            running = Advance(chunkS, chunkZ, p, item, m0 + 4, x, c, isZ, logLambda,
                running, own4);
            running = Advance(chunkS, chunkZ, p, item, m0 + 5, x, c, isZ, logLambda,
                running, own5);
            running = Advance(chunkS, chunkZ, p, item, m0 + 6, x, c, isZ, logLambda,
                running, own6);
            running = Advance(chunkS, chunkZ, p, item, m0 + 7, x, c, isZ, logLambda,
                running, own7);
            running = Advance(chunkS, chunkZ, p, item, m0 + 8, x, c, isZ, logLambda,
                running, own8);
            running = Advance(chunkS, chunkZ, p, item, m0 + 9, x, c, isZ, logLambda,
                running, own9);
            running = Advance(chunkS, chunkZ, p, item, m0 + 10, x, c, isZ, logLambda,
                running, own10);
            running = Advance(chunkS, chunkZ, p, item, m0 + 11, x, c, isZ, logLambda,
                running, own11);
            running = Advance(chunkS, chunkZ, p, item, m0 + 12, x, c, isZ, logLambda,
                running, own12);
            running = Advance(chunkS, chunkZ, p, item, m0 + 13, x, c, isZ, logLambda,
                running, own13);
            running = Advance(chunkS, chunkZ, p, item, m0 + 14, x, c, isZ, logLambda,
                running, own14);
            running = Advance(chunkS, chunkZ, p, item, m0 + 15, x, c, isZ, logLambda,
                running, own15);
        }
        if (isZ) stateZ[carried] = running;
        else stateS[carried] = running;
    }

    /// <summary>Outputs of one (query head, chunk), 64 value columns at a time. Grid:
    /// (sequence x query head, chunk of the segment).</summary>
    public static void ChunkOutputs(ArrayView<float> query, ArrayView<float> key,
        ArrayView<float> value, ArrayView<float> logDecay, ArrayView<float> chunkS,
        ArrayView<float> chunkZ, ArrayView<float> stateS, ArrayView<float> stateZ,
        ArrayView<float> output, ChunkedParams p)
    {
        var qs = SharedMemory.Allocate<Row4>(Depth * Pitch / 4);
        var bs = SharedMemory.Allocate<Row4>(Depth * Pitch / 4);
        // Scores transposed: [key j][query i], the depth-major operand of scores x V.
        var scores = SharedMemory.Allocate<Row4>(Tile * Pitch / 4);
        var den = SharedMemory.Allocate<float>(Tile);
        var qf = qs.Cast<float>();
        var bf = bs.Cast<float>();
        var sf = scores.Cast<float>();
        int tid = Group.IdxX, row0 = tid / 16 * 8, col0 = tid % 16 * 4;
        int ms = Grid.IdxX % p.SegmentChunks, qh = Grid.IdxX / p.SegmentChunks;
        int g = p.Heads / p.KvHeads, b = qh / p.Heads, kvh = qh % p.Heads / g;
        int item = b * p.KvHeads + kvh;
        int f = p.Features, dv = p.ValueDim, n = p.Length;
        int t0 = (p.FirstChunk + ms) * p.Chunk, len = XMath.Min(p.Chunk, n - t0);
        float logLambda = logDecay[kvh];
        bool causal = p.Causal != 0;
        long qRows = (long)qh * n * f, kRows = (long)item * n * f, vRows = (long)item * n * dv;
        // The state the chunk reads: its own prefix (causal) or the total (non-causal).
        long sBase = causal ? ((long)item * p.SegmentChunks + ms) * f * dv : (long)item * f * dv;
        var s = causal ? chunkS : stateS;

        // Denominators: the row sums of the scores, plus lambda^(i+1) phi(q_i) . z before the
        // chunk, accumulated from the staged Q slices of the first value tile (below).
        if (p.Normalize != 0 && tid < Tile) den[tid] = 0f;
        long zBase = causal ? ZIndex(p, item, ms, 0) : (long)item * f;
        var z = causal ? chunkZ : stateZ;
        if (causal)
        {
            // Intra-chunk scores Q K^T over the features, masked and decayed, kept in shared
            // memory for every value tile.
            Row4 a0 = default, a1 = default, a2 = default, a3 = default;
            Row4 a4 = default, a5 = default, a6 = default, a7 = default;
            long qFirst = qRows + (long)t0 * f, kFirst = kRows + (long)t0 * f;
            var nextQ = TileStaging.RowsAlongDepth(query, qFirst, f, len, 0, f, tid);
            var nextK = TileStaging.RowsAlongDepth(key, kFirst, f, len, 0, f, tid);
            for (int x0 = 0; x0 < f; x0 += Depth)
            {
                TileStaging.StoreRowsAlongDepth(qf, nextQ, tid);
                TileStaging.StoreRowsAlongDepth(bf, nextK, tid);
                Group.Barrier();
                if (x0 + Depth < f)
                {
                    nextQ = TileStaging.RowsAlongDepth(query, qFirst, f, len, x0 + Depth, f, tid);
                    nextK = TileStaging.RowsAlongDepth(key, kFirst, f, len, x0 + Depth, f, tid);
                }
                Product(qs, 0, bs, row0, col0, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5,
                    ref a6, ref a7);
                Group.Barrier();
            }
            StoreScores(sf, row0, col0, logLambda, a0);
            StoreScores(sf, row0 + 1, col0, logLambda, a1);
            StoreScores(sf, row0 + 2, col0, logLambda, a2);
            StoreScores(sf, row0 + 3, col0, logLambda, a3);
            StoreScores(sf, row0 + 4, col0, logLambda, a4);
            StoreScores(sf, row0 + 5, col0, logLambda, a5);
            StoreScores(sf, row0 + 6, col0, logLambda, a6);
            StoreScores(sf, row0 + 7, col0, logLambda, a7);
            Group.Barrier();
            if (p.Normalize != 0 && tid < Tile)
            {
                float sum = 0f;
                for (int j = 0; j < Tile; j++) sum += sf[j * Pitch + tid];
                den[tid] = sum;
            }
        }
        long oRows = (long)qh * n * dv;
        for (int c0 = 0; c0 < dv; c0 += Tile)
        {
            // Inter-chunk: Q S over the features.
            Row4 r0 = default, r1 = default, r2 = default, r3 = default;
            Row4 r4 = default, r5 = default, r6 = default, r7 = default;
            long qStart = qRows + (long)t0 * f;
            float qz = 0f;
            var nextQ = TileStaging.RowsAlongDepth(query, qStart, f, len, 0, f, tid);
            var nextS = TileStaging.DepthAlongRows(s, sBase, dv, f, 0, dv, c0, tid);
            for (int x0 = 0; x0 < f; x0 += Depth)
            {
                TileStaging.StoreRowsAlongDepth(qf, nextQ, tid);
                TileStaging.StoreDepthAlongRows(bf, nextS, tid);
                Group.Barrier();
                if (x0 + Depth < f)
                {
                    nextQ = TileStaging.RowsAlongDepth(query, qStart, f, len, x0 + Depth, f, tid);
                    nextS = TileStaging.DepthAlongRows(s, sBase, dv, f, x0 + Depth, dv, c0, tid);
                }
                Product(qs, 0, bs, row0, col0, ref r0, ref r1, ref r2, ref r3, ref r4, ref r5,
                    ref r6, ref r7);
                if (c0 == 0 && p.Normalize != 0 && tid < Tile)
                    for (int kk = 0; kk < Depth && x0 + kk < f; kk++)
                        qz += qf[kk * Pitch + tid] * z[zBase + x0 + kk];
                Group.Barrier();
            }
            if (c0 == 0 && p.Normalize != 0 && tid < Tile)
                den[tid] += causal ? qz * Power(logLambda, tid + 1) : qz;
            if (causal)
            {
                r0 = Scale(r0, Power(logLambda, row0 + 1));
                r1 = Scale(r1, Power(logLambda, row0 + 2));
                r2 = Scale(r2, Power(logLambda, row0 + 3));
                r3 = Scale(r3, Power(logLambda, row0 + 4));
                r4 = Scale(r4, Power(logLambda, row0 + 5));
                r5 = Scale(r5, Power(logLambda, row0 + 6));
                r6 = Scale(r6, Power(logLambda, row0 + 7));
                r7 = Scale(r7, Power(logLambda, row0 + 8));
                // Intra-chunk values: scores V over the chunk's tokens.
                long vFirst = vRows + (long)t0 * dv;
                var nextV = TileStaging.DepthAlongRows(value, vFirst, dv, len, 0, dv, c0, tid);
                for (int j0 = 0; j0 < len; j0 += Depth)
                {
                    TileStaging.StoreDepthAlongRows(bf, nextV, tid);
                    Group.Barrier();
                    if (j0 + Depth < len)
                        nextV = TileStaging.DepthAlongRows(value, vFirst, dv, len, j0 + Depth, dv,
                            c0, tid);
                    Product(scores, j0, bs, row0, col0, ref r0, ref r1, ref r2, ref r3, ref r4,
                        ref r5, ref r6, ref r7);
                    Group.Barrier();
                }
            }
            Group.Barrier(); // den is complete (first tile)
            StoreOutput(output, oRows, den, p, len, t0, row0, c0 + col0, r0);
            StoreOutput(output, oRows, den, p, len, t0, row0 + 1, c0 + col0, r1);
            StoreOutput(output, oRows, den, p, len, t0, row0 + 2, c0 + col0, r2);
            StoreOutput(output, oRows, den, p, len, t0, row0 + 3, c0 + col0, r3);
            StoreOutput(output, oRows, den, p, len, t0, row0 + 4, c0 + col0, r4);
            StoreOutput(output, oRows, den, p, len, t0, row0 + 5, c0 + col0, r5);
            StoreOutput(output, oRows, den, p, len, t0, row0 + 6, c0 + col0, r6);
            StoreOutput(output, oRows, den, p, len, t0, row0 + 7, c0 + col0, r7);
        }
    }

    /// <summary>r_a += a[k][row0 + a] * b[k][col0 .. col0 + 4) for the Depth steps k from
    /// <paramref name="k0"/>: three 16-byte shared loads per step. The Row4 indices are 64-bit
    /// and advance by Pitch / 4 (Pitch, row0 and col0 are multiples of 4) instead of being
    /// recomputed and widened per load: 1.01-1.03x on the H200 (unrolling by 4 on top of it
    /// measured the same).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Product(ArrayView<Row4> a, int k0, ArrayView<Row4> b, int row0,
        int col0, ref Row4 r0, ref Row4 r1, ref Row4 r2, ref Row4 r3, ref Row4 r4, ref Row4 r5,
        ref Row4 r6, ref Row4 r7)
    {
        const int Step = Pitch / 4;
        long at = ((long)k0 * Pitch + row0) / 4, bt = col0 / 4;
        for (int kk = 0; kk < Depth; kk++)
        {
            Row4 lo = a[at], hi = a[at + 1], bv = b[bt];
            at += Step;
            bt += Step;
            r0 = Row4.Fma(lo.C0, bv, r0);
            r1 = Row4.Fma(lo.C1, bv, r1);
            r2 = Row4.Fma(lo.C2, bv, r2);
            r3 = Row4.Fma(lo.C3, bv, r3);
            r4 = Row4.Fma(hi.C0, bv, r4);
            r5 = Row4.Fma(hi.C1, bv, r5);
            r6 = Row4.Fma(hi.C2, bv, r6);
            r7 = Row4.Fma(hi.C3, bv, r7);
        }
    }

    /// <summary>Row i of the scores at columns j = col0 .. col0 + 3, stored transposed:
    /// lambda^(i-j) s for j &lt;= i, else 0.</summary>
    private static void StoreScores(ArrayView<float> scores, int i, int col0, float logLambda,
        Row4 r)
    {
        scores[col0 * Pitch + i] = col0 <= i ? r.C0 * Power(logLambda, i - col0) : 0f;
        scores[(col0 + 1) * Pitch + i] = col0 + 1 <= i ? r.C1 * Power(logLambda, i - col0 - 1) : 0f;
        scores[(col0 + 2) * Pitch + i] = col0 + 2 <= i ? r.C2 * Power(logLambda, i - col0 - 2) : 0f;
        scores[(col0 + 3) * Pitch + i] = col0 + 3 <= i ? r.C3 * Power(logLambda, i - col0 - 3) : 0f;
    }

    private static void StoreState(ArrayView<float> chunkS, long baseS, int f, int dv, int x,
        int c, Row4 r)
    {
        if (x >= f) return;
        long at = baseS + (long)x * dv;
        if (c < dv) chunkS[at + c] = r.C0;
        if (c + 1 < dv) chunkS[at + c + 1] = r.C1;
        if (c + 2 < dv) chunkS[at + c + 2] = r.C2;
        if (c + 3 < dv) chunkS[at + c + 3] = r.C3;
    }

    private static void StoreOutput(ArrayView<float> output, long oRows, ArrayView<float> den,
        ChunkedParams p, int len, int t0, int i, int c, Row4 r)
    {
        if (i >= len) return;
        int dv = p.ValueDim;
        long at = oRows + (long)(t0 + i) * dv;
        float d = p.Normalize != 0 ? den[i] : 1f;
        if (c < dv) output[at + c] = Finish(r.C0, d, p.Normalize);
        if (c + 1 < dv) output[at + c + 1] = Finish(r.C1, d, p.Normalize);
        if (c + 2 < dv) output[at + c + 2] = Finish(r.C2, d, p.Normalize);
        if (c + 3 < dv) output[at + c + 3] = Finish(r.C3, d, p.Normalize);
    }

    /// <summary>Keys of a chunk state weighted lambda^(len-1-j) by their token j.</summary>
    private static Slice8 Decayed(Slice8 v, float logLambda, int len, int j0, int tid)
    {
        if (logLambda == 0f) return v;
        return new(
            v.V0 * Power(logLambda, len - 1 - j0 - TileStaging.DepthOf(tid, 0)),
            v.V1 * Power(logLambda, len - 1 - j0 - TileStaging.DepthOf(tid, 1)),
            v.V2 * Power(logLambda, len - 1 - j0 - TileStaging.DepthOf(tid, 2)),
            v.V3 * Power(logLambda, len - 1 - j0 - TileStaging.DepthOf(tid, 3)),
            v.V4 * Power(logLambda, len - 1 - j0 - TileStaging.DepthOf(tid, 4)),
            v.V5 * Power(logLambda, len - 1 - j0 - TileStaging.DepthOf(tid, 5)),
            v.V6 * Power(logLambda, len - 1 - j0 - TileStaging.DepthOf(tid, 6)),
            v.V7 * Power(logLambda, len - 1 - j0 - TileStaging.DepthOf(tid, 7)));
    }

    private static Row4 Scale(Row4 r, float w) => new(r.C0 * w, r.C1 * w, r.C2 * w, r.C3 * w);

    private static float Finish(float o, float den, int normalize) =>
        normalize == 0 ? o : den == 0f ? 0f : o / den;

    /// <summary>lambda^j from ln lambda (exactly 1 without decay).</summary>
    private static float Power(float logLambda, int j) =>
        logLambda == 0f ? 1f : XMath.Exp(j * logLambda);

    /// <summary>Chunk ms's own state element (0 past the segment).</summary>
    private static float Own(ArrayView<float> chunkS, ArrayView<float> chunkZ, ChunkedParams p,
        int item, int ms, int x, int c, bool isZ)
    {
        if (ms >= p.SegmentChunks) return 0f;
        return isZ ? chunkZ[ZIndex(p, item, ms, x)] : chunkS[SIndex(p, item, ms, x, c)];
    }

    /// <summary>Stores the state before chunk ms (causal) and returns the state after it.
    /// </summary>
    private static float Advance(ArrayView<float> chunkS, ArrayView<float> chunkZ,
        ChunkedParams p, int item, int ms, int x, int c, bool isZ, float logLambda,
        float running, float own)
    {
        if (ms >= p.SegmentChunks) return running;
        if (p.Causal != 0)
        {
            if (isZ) chunkZ[ZIndex(p, item, ms, x)] = running;
            else chunkS[SIndex(p, item, ms, x, c)] = running;
        }
        int t0 = (p.FirstChunk + ms) * p.Chunk, len = XMath.Min(p.Chunk, p.Length - t0);
        return running * Power(logLambda, len) + own;
    }

    private static long SIndex(ChunkedParams p, int item, int ms, int x, int c) =>
        (((long)item * p.SegmentChunks + ms) * p.Features + x) * p.ValueDim + c;

    private static long ZIndex(ChunkedParams p, int item, int ms, int x) =>
        ((long)item * p.SegmentChunks + ms) * p.Features + x;
}
