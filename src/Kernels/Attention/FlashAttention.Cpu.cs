using System.Buffers;
using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Managed.Kernels.Layouts;
using Managed.Kernels.Simd;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Attention;

public static partial class FlashAttention
{
    /// <summary>One kernel pass; <paramref name="rowStats"/> is the softmax log-sum-exp a
    /// two-pass normalizer reads (empty otherwise).</summary>
    private static unsafe void ForwardCpu<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(
        AttentionShape s, AttentionGeometry geometry, ReadOnlySpan<TStorage> query,
        ReadOnlySpan<TStorage> key, ReadOnlySpan<TStorage> value, Span<float> output,
        Span<float> logSumExp, ReadOnlySpan<float> rowStats, TScore score, TMask mask,
        TNorm norm, TSchedule schedule, AttentionOptions options, AttentionTuning tuning)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        fixed (TStorage* q = query, k = key, v = value)
        fixed (float* o = output, lse = logSumExp, st = rowStats)
        {
            var p = new CpuPointers<TStorage>(q, k, v, o, logSumExp.IsEmpty ? null : lse, st);
            switch (SimdSelect.Resolve(tuning.Simd))
            {
                case SimdWidth.V512:
                    CpuKernel<TElement, TStorage, TScore, TMask, TNorm, TSchedule, Simd512,
                        Vector512<float>>.Run(s, geometry, p, score, mask, norm, schedule,
                        options, tuning);
                    break;
                case SimdWidth.V256:
                    CpuKernel<TElement, TStorage, TScore, TMask, TNorm, TSchedule, Simd256,
                        Vector256<float>>.Run(s, geometry, p, score, mask, norm, schedule,
                        options, tuning);
                    break;
                default:
                    CpuKernel<TElement, TStorage, TScore, TMask, TNorm, TSchedule, Simd128,
                        Vector128<float>>.Run(s, geometry, p, score, mask, norm, schedule,
                        options, tuning);
                    break;
            }
        }
    }
}

/// <summary>Raw pointers of one CPU call; the caller keeps them pinned for the call.</summary>
internal readonly unsafe struct CpuPointers<TStorage>(TStorage* q, TStorage* k, TStorage* v,
    float* o, float* lse, float* stats)
    where TStorage : unmanaged
{
    public readonly TStorage* Q = q, K = k, V = v;
    public readonly float* O = o, Lse = lse, Stats = stats;
}

/// <summary>
/// The CPU flash-attention kernel. One parallel region; workers claim (batch, head, query tile)
/// work items in order from an atomic counter, last query tile first. An item computes
/// S = Q K^T, modifier, mask, online softmax, O = alpha O + P V over the key tiles its mask
/// reaches, on tiles that stay in cache. K is read transposed ((headDim, keyTile) tiles, so
/// Q.K^T is a broadcast-FMA over keys): from the call's shared transposes, each made once by
/// the first worker to need it, or, for an item that visits few key tiles, from the worker's
/// own ring. The hot methods are compiled optimized at once (AggressiveOptimization): under
/// tiered compilation the first calls of a shape ran unoptimized code, up to 10x slower.
/// </summary>
internal static unsafe class CpuKernel<TElement, TStorage, TScore, TMask, TNorm, TSchedule, TOps, TV>
    where TElement : struct, IElement<TStorage>
    where TStorage : unmanaged
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate
    where TNorm : struct, INormalizer
    where TSchedule : struct, IKeyTileSchedule
    where TOps : struct, ISimd<TV>
    where TV : unmanaged
{
    /// <summary>Float storage is read in place; Half and BFloat16 rows are widened (SIMD)
    /// into the worker's scratch as they are first read.</summary>
    private static bool Widens => typeof(TStorage) != typeof(float);

    public static void Run(AttentionShape s, AttentionGeometry g, CpuPointers<TStorage> p,
        TScore score, TMask mask, TNorm norm, TSchedule schedule, AttentionOptions options,
        AttentionTuning tuning)
    {
        int d = s.HeadDim, bk = tuning.KeyTile, bq = Math.Min(tuning.QueryTile, s.SeqQ);
        int keyTiles = (s.SeqK + bk - 1) / bk;
        long ktLength = (long)s.Batch * s.KvHeads * keyTiles * d * bk;
        // The shared key transposes (batch, kvHeads, keyTiles, headDim, keyTile); pages are
        // committed only where a worker writes a tile.
        var ktBlock = KeyTransposeScratch.Rent(ktLength * sizeof(float));
        float* kt = (float*)ktBlock.Pointer;
        try
        {
            int queryTiles = (s.SeqQ + bq - 1) / bq;
            var queue = new TaskQueue(s.Batch * s.KvHeads, keyTiles, s.Batch * s.Heads * queryTiles);
            var job = new Job(s, g, p, kt, score, mask, norm, schedule, options.ScaleFor(d),
                options.QueryOffsetFor(s), bq, bk, keyTiles, queryTiles);
            int workers = tuning.MaxDegreeOfParallelism == -1
                ? Environment.ProcessorCount : tuning.MaxDegreeOfParallelism;
            workers = Math.Min(workers, queue.Items);
            if (workers <= 1)
                job.Work(queue);
            else
                Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers },
                    _ => job.Work(queue));
        }
        finally
        {
            KeyTransposeScratch.Return(ktBlock);
        }
    }

    /// <summary>The query-tile counter of one call and the state of each transposed key tile
    /// (0 not yet, 1 being written, 2 ready).</summary>
    private sealed class TaskQueue(int kvHeads, int keyTiles, int items)
    {
        public readonly int Items = items;
        public readonly int[] TileState = new int[kvHeads * keyTiles];
        public int Next = -1;
    }

    /// <summary>Rows of a partial tile computed over one key range.</summary>
    private const int RowGroup = 16;

    /// <summary>Most key tiles a worker's ring holds.</summary>
    private const int MaxRingTiles = 32;

    /// <summary>
    /// A worker's own ring of transposed key tiles, about 512 KB (its L2 share; 8 to 32 tiles):
    /// slot t % Count holds key tile t (global index) when its tag says so. Nothing in it is
    /// valid at the start of a call.
    /// </summary>
    private struct KeyTileRing
    {
        private fixed int tags[MaxRingTiles];
        private readonly float* slots;
        private readonly int tileFloats;
        public readonly int Count;

        public KeyTileRing(float* slots, int tileFloats)
        {
            this.slots = slots;
            this.tileFloats = tileFloats;
            Count = CountFor(tileFloats);
            for (int i = 0; i < MaxRingTiles; i++) tags[i] = -1;
        }

        public static int CountFor(int tileFloats) =>
            Math.Clamp((512 << 10) / (tileFloats * sizeof(float)), 8, MaxRingTiles);

        /// <summary>The slot of tile t, now tagged t; <paramref name="holds"/> false when it held
        /// another tile (the caller transposes t into it before reading it).</summary>
        public float* Slot(int t, out bool holds)
        {
            int i = t % Count;
            holds = tags[i] == t;
            tags[i] = t;
            return slots + (long)i * tileFloats;
        }
    }

    private readonly struct Job(AttentionShape s, AttentionGeometry g, CpuPointers<TStorage> p,
        float* kt, TScore score, TMask mask, TNorm norm, TSchedule schedule, float scale,
        int queryOffset, int bq, int bk, int keyTiles, int queryTiles)
    {
        /// <summary>Position of query row 0 of sequence b.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int QueryOffset(int b) =>
            queryOffset + (g.ShiftByLength ? g.KeyLength(s, b) - s.SeqK : 0);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Work(TaskQueue queue)
        {
            int tileFloats = s.HeadDim * bk;
            int tiles = ScratchFloats(bq, bk, s.HeadDim, s.ValueDim);
            int ringFloats = KeyTileRing.CountFor(tileFloats) * tileFloats;
            int widened = Widens ? bk * (s.HeadDim + s.ValueDim) + 16 : 0;
            float* scratch = CpuScratch.Get(tiles + ringFloats + 16 + widened);
            var ring = new KeyTileRing(Align(scratch + tiles), tileFloats);
            float* wide = Align(Align(scratch + tiles) + ringFloats);
            // Last query tiles first: under causal masks they are the heaviest.
            for (int task = Interlocked.Increment(ref queue.Next); task < queue.Items;
                 task = Interlocked.Increment(ref queue.Next))
                Item(queue.Items - 1 - task, scratch, wide, queue.TileState, ref ring);
            // The output's non-temporal stores (StreamOut) are weakly ordered: one fence per
            // worker, before the call can return, not one per tile (each would wait for them).
            if (Sse.IsSupported) Sse.StoreFence();
        }

        /// <summary>
        /// Key tile t transposed, by whichever worker needs it first: it is then still in cache
        /// for its first use, and a tile no query reaches is never transposed. Another worker
        /// that needs it meanwhile waits for it (a short, bounded wait: the writer never waits).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void EnsureTransposed(int[] state, int t, float* wide)
        {
            if (Volatile.Read(ref state[t]) == 2) return;
            if (Interlocked.CompareExchange(ref state[t], 1, 0) == 0)
            {
                TransposeKeyTile(t, kt + (long)t * s.HeadDim * bk, wide);
                Volatile.Write(ref state[t], 2);
                return;
            }
            var spin = new SpinWait();
            while (Volatile.Read(ref state[t]) != 2) spin.SpinOnce();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int ScratchFloats(int bq, int bk, int d, int dv) =>
            bq * d + bq * bk + bq * dv + 2 * bq + bq * TOps.Count + 6 * 16;

        /// <summary>Key tile t (index over batch, kvHeads, keyTiles) of K into dst, transposed:
        /// (headDim, keyTile), zero past the sequence's keys. Half and BFloat16 rows are widened
        /// into <paramref name="wide"/> first.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void TransposeKeyTile(int t, float* dst, float* wide)
        {
            int d = s.HeadDim, tile = t % keyTiles, bh = t / keyTiles;
            int b = bh / s.KvHeads, kvh = bh - b * s.KvHeads;
            int k0 = tile * bk, cols = Math.Max(0, Math.Min(bk, g.KeyLength(s, b) - k0));
            float* src;
            nint ls;
            if (Widens)
            {
                WidenRows(p.K + g.K.Offset(b, kvh, k0), (nint)g.K.Row, wide, cols, d);
                src = wide;
                ls = d;
            }
            else
            {
                src = (float*)(p.K + g.K.Offset(b, kvh, k0));
                ls = (nint)g.K.Row;
            }
            int j = 0;
            if (Avx.IsSupported)
                for (; j + 8 <= cols; j += 8)
                {
                    int c = 0;
                    for (; c + 8 <= d; c += 8) Transpose8x8(src + j * ls + c, ls, dst + c * bk + j, bk);
                    for (; c < d; c++)
                        for (int jj = j; jj < j + 8; jj++) dst[c * bk + jj] = src[jj * ls + c];
                }
            for (; j < cols; j++)
                for (int c = 0; c < d; c++)
                    dst[c * bk + j] = src[j * ls + c];
            if (cols < bk)
                for (int c = 0; c < d; c++)
                    new Span<float>(dst + c * bk + cols, bk - cols).Clear();
        }

        /// <summary>dst[c * ld + r] = src[r * ls + c] for r, c &lt; 8 (AVX unpack/shuffle/permute).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Transpose8x8(float* src, nint ls, float* dst, int ld)
        {
            var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + ls);
            var r2 = Avx.LoadVector256(src + 2 * ls); var r3 = Avx.LoadVector256(src + 3 * ls);
            var r4 = Avx.LoadVector256(src + 4 * ls); var r5 = Avx.LoadVector256(src + 5 * ls);
            var r6 = Avx.LoadVector256(src + 6 * ls); var r7 = Avx.LoadVector256(src + 7 * ls);
            // Pairs of rows interleaved, then groups of 4 rows: u_i holds columns i and i + 4 of rows 0-3
            // (u_0..u_3) or 4-7 (u_4..u_7) in its two 128-bit lanes.
            var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
            var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
            var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
            var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
            var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
            var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
            var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
            var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
            Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
            Avx.Store(dst + ld, Avx.Permute2x128(u1, u5, 0x20));
            Avx.Store(dst + 2 * ld, Avx.Permute2x128(u2, u6, 0x20));
            Avx.Store(dst + 3 * ld, Avx.Permute2x128(u3, u7, 0x20));
            Avx.Store(dst + 4 * ld, Avx.Permute2x128(u0, u4, 0x31));
            Avx.Store(dst + 5 * ld, Avx.Permute2x128(u1, u5, 0x31));
            Avx.Store(dst + 6 * ld, Avx.Permute2x128(u2, u6, 0x31));
            Avx.Store(dst + 7 * ld, Avx.Permute2x128(u3, u7, 0x31));
        }

        /// <summary>rows rows of count stored elements, rows <paramref name="stride"/> apart,
        /// widened into dst as (rows, count) dense.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void WidenRows(TStorage* src, nint stride, float* dst, int rows, int count)
        {
            for (int r = 0; r < rows; r++)
            {
                var to = new Span<float>(dst + (long)r * count, count);
                if (typeof(TStorage) == typeof(Half))
                    ElementConvert.ToSingle(new ReadOnlySpan<Half>(src + r * stride, count), to);
                else if (typeof(TStorage) == typeof(BFloat16))
                    ElementConvert.ToSingle(new ReadOnlySpan<BFloat16>(src + r * stride, count), to);
                else
                    for (int c = 0; c < count; c++) to[c] = TElement.ToSingle(src[r * stride + c]);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Item(int item, float* scratch, float* wide, int[] tileState,
            ref KeyTileRing ring)
        {
            int qt = item % queryTiles, bh = item / queryTiles;
            int h = bh % s.Heads, b = bh / s.Heads;
            int kvh = h / s.GroupSize;
            int d = s.HeadDim, dv = s.ValueDim, n = TOps.Count;
            int q0 = qt * bq, rows = Math.Min(bq, s.SeqQ - q0);
            int pos0 = q0 + QueryOffset(b), seqK = g.KeyLength(s, b);

            // Tiles, each 64-byte aligned: Q (bq, d), S (bq, bk), O (bq, dv), M (bq): the
            // running max (softmax) or the row parameter (other normalizers), alpha (bq),
            // L (bq, n): per-row partial sums, added across lanes at the end.
            float* tq = Align(scratch), ts = Align(tq + bq * d), to = Align(ts + bq * bk);
            float* tm = Align(to + bq * dv), ta = Align(tm + bq), tl = Align(ta + bq);

            if (Widens)
            {
                WidenRows(p.Q + g.Q.Offset(b, h, q0), (nint)g.Q.Row, tq, rows, d);
                Scale(tq, tq, rows * d, scale);
            }
            else if (g.Q.Row == d)
                Scale((float*)(p.Q + g.Q.Offset(b, h, q0)), tq, rows * d, scale);
            else
                for (int r = 0; r < rows; r++)
                    Scale((float*)(p.Q + g.Q.Offset(b, h, q0 + r)), tq + r * d, d, scale);
            if (Sse.IsSupported) PrefetchAhead(bh, b, h, kvh, qt);
            for (int r = 0; r < rows; r++)
                tm[r] = TNorm.IsSoftmax ? float.NegativeInfinity : norm.RowParameter(pos0 + r,
                    TNorm.NeedsLogSumExp ? p.Stats[(long)bh * s.SeqQ + q0 + r] : 0f);
            new Span<float>(tl, rows * n).Clear();
            new Span<float>(to, rows * dv).Clear();

            int kvBh = b * s.KvHeads + kvh;
            TStorage* vHead = p.V + g.V.Offset(b, kvh, 0);
            float* vWide = wide + bk * d;
            // Only the key tiles the mask's key range can reach (FlexAttention's per-row block list).
            long kStart = Math.Max(0, mask.KeyStart(b, h, pos0, pos0 + rows));
            long kEnd = Math.Min(seqK, (long)mask.KeyEnd(b, h, pos0, pos0 + rows));
            int firstTile = (int)(kStart / bk), endTile = (int)((kEnd + bk - 1) / bk);
            // A query tile that visits few key tiles (a window, a document, sinks + window) reads
            // them transposed from the worker's own ring, which stays in its cache: the shared
            // transposes go out to memory and back, a cost per key that a 9-tile band cannot
            // amortize as a long causal row does (its tiles would not fit the ring).
            bool ringed = VisitedTiles(b, h, pos0, rows, seqK, firstTile, endTile, ring.Count + 1)
                <= ring.Count;
            int steps = endTile > firstTile ? schedule.Steps(b, h, firstTile, endTile) : 0;
            for (int step = 0; step < steps; step++)
            {
                int tile = schedule.TileAt(b, h, firstTile, endTile, step);
                if ((uint)(tile - firstTile) >= (uint)(endTile - firstTile)) continue;
                int k0 = tile * bk, cols = Math.Min(bk, seqK - k0);
                var kind = mask.Classify(b, h, pos0, pos0 + rows, k0, k0 + cols);
                if (kind == TileKind.Empty) continue;
                int t = kvBh * keyTiles + tile;
                float* ktBase;
                if (ringed)
                {
                    ktBase = ring.Slot(t, out bool holds);
                    if (!holds) TransposeKeyTile(t, ktBase, wide);
                }
                else
                {
                    ktBase = kt + (long)t * d * bk;
                    EnsureTransposed(tileState, t, wide);
                }
                float* vTile;
                nint vStride;
                if (Widens)
                {
                    WidenRows(vHead + k0 * g.V.Row, (nint)g.V.Row, vWide, cols, dv);
                    vTile = vWide;
                    vStride = dv;
                }
                else
                {
                    vTile = (float*)(vHead + k0 * g.V.Row);
                    vStride = (nint)g.V.Row;
                }
                // A partial tile's rows go in groups of 16, each over its own key range, the
                // columns [j0, j1) of the tile inside it: from the 16-key chunk holding its first
                // key to its last key. A band's edge tiles then skip about half of the masked
                // pairs that one 32-row block would compute.
                int group = kind == TileKind.Partial ? RowGroup : rows;
                for (int g0 = 0; g0 < rows; g0 += group)
                {
                    int gRows = Math.Min(group, rows - g0);
                    long gStart = kStart, gEnd = kEnd;
                    if (gRows < rows)
                    {
                        gStart = Math.Max(gStart, mask.KeyStart(b, h, pos0 + g0, pos0 + g0 + gRows));
                        gEnd = Math.Min(gEnd, mask.KeyEnd(b, h, pos0 + g0, pos0 + g0 + gRows));
                    }
                    int j0 = (int)Math.Max(0, gStart - k0) & ~15, j1 = (int)Math.Min(cols, gEnd - k0);
                    if (kind == TileKind.Partial && !TMask.RowIsInterval)
                        TrimEmptyChunks(b, h, pos0 + g0, pos0 + g0 + gRows, k0, ref j0, ref j1);
                    int span = j1 - j0, width = (span + 15) & ~15; // padded to 16: every SIMD width divides it
                    if (span <= 0) continue; // no key of this tile in the range
                    float* sBlock = ts + g0 * bk + j0;
                    MicroKernels<TOps, TV>.ScoreTile(tq + g0 * d, ktBase + j0, sBlock, gRows, width, d, bk);
                    for (int r = g0; r < g0 + gRows; r++)
                    {
                        float* row = ts + r * bk + j0;
                        int pos = pos0 + r;
                        score.ApplyRow(new Span<float>(row, span), b, h, pos, k0 + j0);
                        if (kind == TileKind.Partial) MaskRow(row, span, b, h, pos, k0 + j0);
                        for (int j = span; j < width; j++) row[j] = float.NegativeInfinity;
                        if (TNorm.IsSoftmax) OnlineSoftmaxRow(row, width, ref tm[r], out ta[r], tl + r * n);
                        else WeightRow(row, width, tm[r], out ta[r], tl + r * n);
                    }
                    MicroKernels<TOps, TV>.AccumulateValues(sBlock, vTile + j0 * vStride,
                        to + g0 * dv, ta + g0, gRows, span, dv, bk, vStride);
                }
            }

            for (int r = 0; r < rows; r++)
            {
                float l = TOps.SumAcross(TOps.Load(tl + r * n));
                // l == 0: no weight (softmax: no key allowed): zeros and -infinity. l NaN (a NaN
                // or, under softmax, +infinity logit: exp(inf - inf)) must stay NaN, not read as 0.
                float factor = !TNorm.DividesBySum ? 1f : l == 0f ? 0f : 1f / l;
                if (float.IsPositiveInfinity(factor)) // l subnormal (softplus): divide, 1/l overflows
                    for (int c = 0; c < dv; c++) to[r * dv + c] /= l;
                else
                    Scale(to + r * dv, to + r * dv, dv, factor);
                if (p.Lse != null)
                    p.Lse[(long)bh * s.SeqQ + q0 + r] = l == 0f ? float.NegativeInfinity
                        : TNorm.IsSoftmax ? tm[r] + MathF.Log(l) : MathF.Log(l);
            }
            if (g.O.Row == dv)
                StreamOut(to, p.O + g.O.Offset(b, h, q0), rows * dv);
            else
                for (int r = 0; r < rows; r++)
                    StreamOut(to + r * dv, p.O + g.O.Offset(b, h, q0 + r), dv);
        }

        /// <summary>
        /// Narrows the columns [j0, j1) of a partial tile (j0 a multiple of 16) past its leading and
        /// trailing 16-key chunks that the mask classifies Empty for the query rows [q0, q1): the
        /// keys a row's range cannot express, such as those between the sinks and the window.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void TrimEmptyChunks(int b, int h, int q0, int q1, int k0, ref int j0, ref int j1)
        {
            while (j0 < j1 && mask.Classify(b, h, q0, q1, k0 + j0, k0 + Math.Min(j0 + 16, j1)) == TileKind.Empty)
                j0 += 16;
            while (j1 > j0)
            {
                int chunk = (j1 - 1) & ~15;
                if (mask.Classify(b, h, q0, q1, k0 + chunk, k0 + j1) != TileKind.Empty) break;
                j1 = chunk;
            }
        }

        /// <summary>The key tiles in [first, end) that the query rows [pos0, pos0 + rows) visit
        /// (not Empty), counted up to <paramref name="limit"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private int VisitedTiles(int b, int h, int pos0, int rows, int seqK, int first, int end,
            int limit)
        {
            int count = 0;
            for (int tile = first; tile < end && count < limit; tile++)
            {
                int k0 = tile * bk, k1 = Math.Min(k0 + bk, seqK);
                if (mask.Classify(b, h, pos0, pos0 + rows, k0, k1) != TileKind.Empty) count++;
            }
            return count;
        }

        /// <summary>
        /// dst[i] = src[i] for i &lt; count, the body with non-temporal stores: the output block is
        /// contiguous and not read again by the kernel, so it goes to memory without first
        /// reading its lines (a write-allocate doubles the traffic of a short-row call, such as a
        /// sliding window). <see cref="Work"/> fences them once at its end.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void StreamOut(float* src, float* dst, int count)
        {
            int i = 0;
            if (Avx.IsSupported)
            {
                for (; i < count && ((nint)(dst + i) & 31) != 0; i++) dst[i] = src[i];
                for (; i + 8 <= count; i += 8) Avx.StoreAlignedNonTemporal(dst + i, Avx.LoadVector256(src + i));
            }
            for (; i < count; i++) dst[i] = src[i];
        }

        /// <summary>
        /// row[j] = -infinity where the mask disallows (pos, k0 + j), j &lt; cols. Interval rows:
        /// outside the row's bounds. Otherwise Classify on the row's 16-key chunks first, so only
        /// Partial chunks ask Allows key by key.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void MaskRow(float* row, int cols, int b, int h, int pos, int k0)
        {
            if (TMask.RowIsInterval)
            {
                // The row's keys are one interval: -infinity before and after it.
                long start = Math.Clamp((long)mask.KeyStart(b, h, pos, pos + 1) - k0, 0, cols);
                long end = Math.Clamp((long)mask.KeyEnd(b, h, pos, pos + 1) - k0, start, cols);
                FillMasked(row, (int)start);
                FillMasked(row + end, cols - (int)end);
                return;
            }
            for (int j0 = 0; j0 < cols; j0 += 16)
            {
                int j1 = Math.Min(j0 + 16, cols);
                var chunk = mask.Classify(b, h, pos, pos + 1, k0 + j0, k0 + j1);
                if (chunk == TileKind.Full) continue;
                if (chunk == TileKind.Empty)
                    FillMasked(row + j0, j1 - j0);
                else
                    for (int j = j0; j < j1; j++)
                        if (!mask.Allows(b, h, pos, k0 + j)) row[j] = float.NegativeInfinity;
            }
        }

        /// <summary>p[i] = -infinity for i &lt; count (Span.Fill of float runs unoptimized
        /// code for its first calls: it is not precompiled).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void FillMasked(float* p, int count)
        {
            int n = TOps.Count, i = 0;
            var inf = TOps.Broadcast(float.NegativeInfinity);
            for (; i + n <= count; i += n) TOps.Store(inf, p + i);
            for (; i < count; i++) p[i] = float.NegativeInfinity;
        }

        /// <summary>
        /// Elementwise normalizers: row[j] = w(row[j]) in place (padding and masked logits are
        /// -infinity, so they get 0), the row's sum added to lane 0 of l, alpha = 1.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void WeightRow(float* row, int width, float rowParameter, out float alpha, float* l)
        {
            float sum = 0f;
            for (int j = 0; j < width; j++) sum += row[j] = norm.Weight(row[j], rowParameter);
            l[0] += sum;
            alpha = 1f;
        }

        /// <summary>
        /// Cache hints (to L2) for what this worker's next query tile reads first from memory:
        /// its Q block (query tiles run last to first, and the worker after this one takes the
        /// tile just below, so this worker's next one is two below) and, under a banded mask,
        /// the K and V rows of the key tile below this tile's band, the one tile that query tile
        /// adds. A whole tile of work hides their latency; a wrong guess costs only the hints.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void PrefetchAhead(int bh, int b, int h, int kvh, int qt)
        {
            int next = qt - 2;
            if (next < 0) return;
            int q0 = next * bq, rows = Math.Min(bq, s.SeqQ - q0), d = s.HeadDim, dv = s.ValueDim;
            int bytes = sizeof(TStorage), pos0 = q0 + QueryOffset(b);
            if (g.Q.Row == d) Prefetch(p.Q + g.Q.Offset(b, h, q0), (long)rows * d * bytes);
            long kStart = Math.Max(0, mask.KeyStart(b, h, pos0, pos0 + rows));
            if (kStart == 0) return;
            int k0 = (int)(kStart / bk * bk), cols = Math.Min(bk, g.KeyLength(s, b) - k0);
            if (cols <= 0) return;
            if (g.K.Row == d) Prefetch(p.K + g.K.Offset(b, kvh, k0), (long)cols * d * bytes);
            if (g.V.Row == dv) Prefetch(p.V + g.V.Offset(b, kvh, k0), (long)cols * dv * bytes);
        }

        /// <summary>L2 hints for the cache lines of the <paramref name="bytes"/> at p.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Prefetch(void* p, long bytes)
        {
            for (long i = 0; i < bytes; i += 64) Sse.Prefetch1((byte*)p + i);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float* Align(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

        /// <summary>dst[i] = src[i] * factor for i &lt; count.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Scale(float* src, float* dst, int count, float factor)
        {
            int n = TOps.Count, i = 0;
            var f = TOps.Broadcast(factor);
            for (; i + n <= count; i += n) TOps.Store(TOps.Mul(TOps.Load(src + i), f), dst + i);
            for (; i < count; i++) dst[i] = src[i] * factor;
        }

        /// <summary>
        /// Online softmax on one row of a tile: new max m', P = exp(S - m') in place, the row's
        /// lane sums l = alpha l + P and alpha = exp(m - m'), by which AccumulateValues rescales
        /// the output row. A row still fully masked gets P = 0 and alpha = 1 (its O is still 0).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void OnlineSoftmaxRow(float* row, int width, ref float m, out float alpha, float* l)
        {
            int n = TOps.Count;
            TV vmax = TOps.Load(row);
            for (int j = n; j < width; j += n) vmax = TOps.Max(vmax, TOps.Load(row + j));
            float mNew = MathF.Max(m, TOps.MaxAcross(vmax));
            if (float.IsNegativeInfinity(mNew))
            {
                // The native max may drop a NaN next to -infinity; such a row must still get
                // NaN, as an IEEE max would give (m' = NaN makes the whole row NaN).
                bool nan = false;
                for (int j = 0; j < width; j++) nan |= float.IsNaN(row[j]);
                if (!nan)
                {
                    new Span<float>(row, width).Clear();
                    alpha = 1f;
                    return;
                }
                mNew = float.NaN;
            }
            var vm = TOps.Broadcast(mNew);
            TV vsum = TOps.Exp(TOps.Sub(TOps.Load(row), vm));
            TOps.Store(vsum, row);
            for (int j = n; j < width; j += n)
            {
                TV e = TOps.Exp(TOps.Sub(TOps.Load(row + j), vm));
                TOps.Store(e, row + j);
                vsum = TOps.Add(vsum, e);
            }
            alpha = m == mNew ? 1f : MathF.Exp(m - mNew); // m = -inf gives 0
            TOps.Store(TOps.Fma(TOps.Load(l), TOps.Broadcast(alpha), vsum), l);
            m = mNew;
        }
    }
}

/// <summary>
/// Per-thread scratch of the CPU kernel, kept between calls so a call allocates no tiles:
/// a pinned (POH) array that only grows. It holds intermediate tiles only; every call
/// initializes what it reads, so the cache never changes a result.
/// </summary>
internal static unsafe class CpuScratch
{
    [ThreadStatic] private static float[]? t_memory;

    /// <summary>At least <paramref name="floats"/> floats plus 64 bytes of alignment slack.</summary>
    public static float* Get(int floats)
    {
        var memory = t_memory;
        if (memory is null || memory.Length < floats + 16)
            t_memory = memory = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
        return (float*)Unsafe.AsPointer(ref memory[0]);
    }
}

/// <summary>
/// Native memory for the CPU kernel's shared key transposes: one block of at most
/// <see cref="KeptBytes"/> is kept between calls (a fresh block per call costs a page fault per
/// 4 KB it touches: +1 ms on a 1024-key call), a larger one is freed when its call returns (a
/// pooled array used to keep 256 MB after one call with 2^20 keys at D=64, 1.28 GB at D=256).
/// Concurrent calls each get a block of their own.
/// </summary>
internal static unsafe class KeyTransposeScratch
{
    /// <summary>Most bytes kept after a call returns.</summary>
    public const long KeptBytes = 64L << 20;

    private static nint s_kept;
    private static long s_keptBytes;
    private static readonly object s_lock = new();

    /// <summary>Bytes kept now (for tests).</summary>
    public static long HeldBytes { get { lock (s_lock) return s_keptBytes; } }

    /// <summary>A block of at least <paramref name="bytes"/>, 64-byte aligned.</summary>
    public static (nint Pointer, long Bytes) Rent(long bytes)
    {
        bytes = Math.Max(bytes, 64);
        lock (s_lock)
        {
            if (s_kept != 0 && s_keptBytes >= bytes)
            {
                var block = (s_kept, s_keptBytes);
                s_kept = 0;
                s_keptBytes = 0;
                return block;
            }
        }
        return ((nint)NativeMemory.AlignedAlloc((nuint)bytes, 64), bytes);
    }

    /// <summary>Keeps <paramref name="block"/> for the next call if it is small enough and
    /// larger than the block kept now; frees it (or the smaller block) otherwise.</summary>
    public static void Return((nint Pointer, long Bytes) block)
    {
        nint free = block.Pointer;
        if (block.Bytes <= KeptBytes)
        {
            lock (s_lock)
            {
                if (block.Bytes > s_keptBytes)
                    (free, s_kept, s_keptBytes) = (s_kept, block.Pointer, block.Bytes);
            }
        }
        if (free != 0) NativeMemory.AlignedFree((void*)free);
    }
}
