using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;
using System.Runtime.Intrinsics;
using Managed.Kernels.Layouts;
using Managed.Kernels.Simd;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Kernels.Decode;

// The host path: work items (sequence, KV head, part) spread over threads; each reads its keys'
// rows in place (float) or widened with SIMD a 64-key tile at a time (Half, BFloat16) into the
// worker's scratch; no transposes. Then the parts are merged. Parts and tiles are over the
// head's slots [0, Kept); masks and score modifiers see the slots' original positions.
public static partial class DecodeAttention
{
    private const int HostTile = 64;

    private static void ForwardHost<TElement, TStorage, TScore, TMask, TNorm>(
        KvCache<TStorage> cache, DecodeProblem pr, ReadOnlySpan<float> query, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, TNorm norm, DecodeOptions options)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        if (!TNorm.NeedsLogSumExp)
        {
            HostPass<TElement, TStorage, TScore, TMask, TNorm>(cache, pr, query, output,
                logSumExp, default, score, mask, norm);
            return;
        }
        // Two passes: the softmax log-sum-exp of every row first (its output is scratch).
        int rows = pr.Batch * pr.Heads * pr.Rows;
        float[] stats = ArrayPool<float>.Shared.Rent(rows);
        float[] scratch = ArrayPool<float>.Shared.Rent(output.Length);
        try
        {
            HostPass<TElement, TStorage, TScore, TMask, SoftmaxNormalizer>(cache, pr, query,
                scratch.AsSpan(0, output.Length), stats.AsSpan(0, rows), default, score, mask,
                default);
            HostPass<TElement, TStorage, TScore, TMask, TNorm>(cache, pr, query, output,
                logSumExp, stats.AsSpan(0, rows), score, mask, norm);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(stats);
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    private static void HostPass<TElement, TStorage, TScore, TMask, TNorm>(
        KvCache<TStorage> cache, DecodeProblem pr, ReadOnlySpan<float> query, Span<float> output,
        Span<float> logSumExp, ReadOnlySpan<float> rowStats, TScore score, TMask mask, TNorm norm)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        int items = pr.Batch * pr.KvHeads * pr.Splits, qn = pr.Vectors;
        float[] partO = ArrayPool<float>.Shared.Rent(items * qn * pr.ValueDim);
        float[] partM = ArrayPool<float>.Shared.Rent(items * qn);
        float[] partL = ArrayPool<float>.Shared.Rent(items * qn);
        float[] q = ArrayPool<float>.Shared.Rent(query.Length);
        float[]? stats = rowStats.IsEmpty ? null : ArrayPool<float>.Shared.Rent(rowStats.Length);
        try
        {
            query.CopyTo(q);
            rowStats.CopyTo(stats);
            Action<int> work = SimdSelect.Resolve(SimdWidth.Auto) switch
            {
                SimdWidth.V512 => new HostJob<TElement, TStorage, TScore, TMask, TNorm, Simd512,
                    Vector512<float>>(cache, pr, q, stats, partO, partM, partL, score, mask,
                    norm).Item,
                SimdWidth.V256 => new HostJob<TElement, TStorage, TScore, TMask, TNorm, Simd256,
                    Vector256<float>>(cache, pr, q, stats, partO, partM, partL, score, mask,
                    norm).Item,
                _ => new HostJob<TElement, TStorage, TScore, TMask, TNorm, Simd128,
                    Vector128<float>>(cache, pr, q, stats, partO, partM, partL, score, mask,
                    norm).Item,
            };
            int threads = Math.Min(pr.Threads, items);
            if (threads <= 1)
                for (int i = 0; i < items; i++) work(i);
            else if (pr.Workers is { } workers)
                workers.For(items, work);
            else
                Parallel.For(0, items, new ParallelOptions { MaxDegreeOfParallelism = threads },
                    work);
            MergeHost<TNorm>(pr, partO, partM, partL, output, logSumExp);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partO);
            ArrayPool<float>.Shared.Return(partM);
            ArrayPool<float>.Shared.Return(partL);
            ArrayPool<float>.Shared.Return(q);
            if (stats is not null) ArrayPool<float>.Shared.Return(stats);
        }
    }

    /// <summary>Combines the parts of each query row: with M = max m_s, L = sum l_s e^(m_s - M),
    /// O = sum O_s e^(m_s - M), divided by L for normalizers that divide by the weight sum.
    /// </summary>
    private static void MergeHost<TNorm>(DecodeProblem pr, float[] partO, float[] partM,
        float[] partL, Span<float> output, Span<float> logSumExp)
        where TNorm : struct, INormalizer
    {
        int qn = pr.Vectors, dv = pr.ValueDim, g = pr.Group;
        for (int b = 0; b < pr.Batch; b++)
            for (int kvh = 0; kvh < pr.KvHeads; kvh++)
                for (int v = 0; v < qn; v++)
                {
                    int h = kvh * g + v / pr.Rows, r = v % pr.Rows;
                    int item0 = (b * pr.KvHeads + kvh) * pr.Splits;
                    float m = float.NegativeInfinity;
                    for (int s = 0; s < pr.Splits; s++)
                        m = MathF.Max(m, partM[(item0 + s) * qn + v]);
                    var o = output.Slice(((b * pr.Heads + h) * pr.Rows + r) * dv, dv);
                    o.Clear();
                    float l = 0f;
                    if (!float.IsNegativeInfinity(m))
                        for (int s = 0; s < pr.Splits; s++)
                        {
                            int at = (item0 + s) * qn + v;
                            float w = TNorm.IsSoftmax ? MathF.Exp(partM[at] - m) : 1f;
                            if (w == 0f) continue;
                            l += partL[at] * w;
                            TensorPrimitives.MultiplyAdd(partO.AsSpan(at * dv, dv), w, o, o);
                        }
                    if (TNorm.DividesBySum)
                    {
                        if (l == 0f) o.Clear();
                        else TensorPrimitives.Divide(o, l, o);
                    }
                    if (!logSumExp.IsEmpty)
                        logSumExp[(b * pr.Heads + h) * pr.Rows + r] = l == 0f
                            ? float.NegativeInfinity
                            : TNorm.IsSoftmax ? m + MathF.Log(l) : MathF.Log(l);
                }
    }

    /// <summary>One call's host work items: (sequence, KV head, part). Tiles of 64 keys: one
    /// that the mask allows whole for every head of the group runs the register-blocked
    /// micro-kernels (each K and V row loaded once for all the group's query vectors); a
    /// partly masked one goes key by key and never touches a disallowed key's K or V.</summary>
    private sealed unsafe class HostJob<TElement, TStorage, TScore, TMask, TNorm, TOps, TV>(
        KvCache<TStorage> cache, DecodeProblem pr, float[] query, float[]? rowStats,
        float[] partO, float[] partM, float[] partL, TScore score, TMask mask, TNorm norm)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TOps : struct, ISimd<TV>
        where TV : unmanaged
    {
        private readonly TStorage* _keys = (TStorage*)Unsafe.AsPointer(
            ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(cache.HostKeys));
        private readonly TStorage* _values = (TStorage*)Unsafe.AsPointer(
            ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(cache.HostValues));
        private readonly int[]? _positions = cache.HostPositions;

        /// <summary>Original position of slot <paramref name="slot"/> of head bh.</summary>
        private int Pos(int bh, int slot) =>
            _positions is null ? slot : _positions[(long)bh * cache.Capacity + slot];

        /// <summary>The first slot below <paramref name="kept"/> of head bh whose position is
        /// at least <paramref name="position"/> (positions increase over slots).</summary>
        private int SlotOf(int bh, int kept, int position)
        {
            if (_positions is null) return Math.Clamp(position, 0, kept);
            int lo = 0, hi = kept;
            long at = (long)bh * cache.Capacity;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_positions[at + mid] < position) lo = mid + 1;
                else hi = mid;
            }
            return lo;
        }

        /// <summary>Adds ln N to the compensation slot's score if it lies in [k0, k0 + n).
        /// </summary>
        private void Compensate(int bh, int k0, int n, float* p)
        {
            int slot = cache.HostCompensationSlot[bh];
            if (slot >= k0 && slot < k0 + n) p[slot - k0] += cache.HostCompensationLogCount[bh];
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Item(int item)
        {
            int s = item % pr.Splits, bk = item / pr.Splits;
            int kvh = bk % pr.KvHeads, b = bk / pr.KvHeads;
            int qn = pr.Vectors, d = pr.HeadDim, dv = pr.ValueDim, g = pr.Group, rows = pr.Rows;
            int bh = b * pr.KvHeads + kvh, kept = cache.HostKept[bh];
            int pos0 = cache.HostLengths[b] - rows;
            const int T = HostTile;
            float* qs = CpuScratch.Get(qn * (d + dv + T + 3) + T * (d + dv) + 64);
            float* os = qs + qn * d, ps = os + qn * dv, ms = ps + qn * T, ls = ms + qn;
            float* al = ls + qn, kw = al + qn, vw = kw + T * d;
            for (int v = 0; v < qn; v++)
            {
                int h = kvh * g + v / rows, r = v % rows;
                TensorPrimitives.Multiply(query.AsSpan(((b * pr.Heads + h) * rows + r) * d, d),
                    pr.Scale, new Span<float>(qs + v * d, d));
                float stat = rowStats is null ? 0f : rowStats[(b * pr.Heads + h) * rows + r];
                ms[v] = TNorm.IsSoftmax ? float.NegativeInfinity : norm.RowParameter(pos0 + r, stat);
                ls[v] = 0f;
            }
            new Span<float>(os, qn * dv).Clear();
            var (lo, hi) = DecodeProblem.Part(kept, pr.Splits, s);
            // The keys any head of the group can reach (positions, then slots).
            int kStart = int.MaxValue, kEnd = int.MinValue;
            for (int j = 0; j < g; j++)
            {
                kStart = Math.Min(kStart, mask.KeyStart(b, kvh * g + j, pos0, pos0 + rows));
                kEnd = Math.Max(kEnd, mask.KeyEnd(b, kvh * g + j, pos0, pos0 + rows));
            }
            lo = Math.Max(lo, SlotOf(bh, kept, kStart));
            hi = Math.Min(hi, SlotOf(bh, kept, kEnd));
            for (int k0 = lo; k0 < hi; k0 += T)
            {
                int n = Math.Min(T, hi - k0);
                if (k0 + T < hi) Prefetch(b, kvh, k0 + T, Math.Min(T, hi - k0 - T));
                // Positions increase over slots, so the tile's lie in [p0, p1).
                int p0 = Pos(bh, k0), p1 = Pos(bh, k0 + n - 1) + 1;
                bool any = false, all = true;
                for (int j = 0; j < g; j++)
                {
                    var kind = mask.Classify(b, kvh * g + j, pos0, pos0 + rows, p0, p1);
                    any |= kind != TileKind.Empty;
                    all &= kind == TileKind.Full;
                }
                if (!any) continue;
                if (all)
                {
                    FullTile(b, kvh, pos0, k0, n, qs, kw, vw, os, ps, ms, ls, al);
                    continue;
                }
                // Float rows are read in place; others widened into scratch.
                bool inPlace = typeof(TStorage) == typeof(float);
                float* kp = inPlace ? null : Widened(_keys, b, kvh, k0, n, d, kw, keys: true);
                float* vp = inPlace ? null : Widened(_values, b, kvh, k0, n, dv, vw, keys: false);
                PartialTile(b, kvh, pos0, k0, n, p0, p1, qs, kp, vp, os, ps, ms, ls);
            }
            new ReadOnlySpan<float>(os, qn * dv).CopyTo(partO.AsSpan(item * qn * dv, qn * dv));
            for (int v = 0; v < qn; v++)
            {
                partM[item * qn + v] = TNorm.IsSoftmax ? ms[v] : 0f;
                partL[item * qn + v] = ls[v];
            }
        }

        /// <summary>Every pair allowed: scores of all vectors at once, the online softmax,
        /// then O = alpha O + P V. Float rows are read in place; 16-bit rows are widened into
        /// <paramref name="kw"/> and <paramref name="vw"/> <see cref="WidenedKeys"/> at a time,
        /// so the widened rows are still in L1 when the products read them.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void FullTile(int b, int kvh, int pos0, int k0, int n, float* qs, float* kw,
            float* vw, float* os, float* ps, float* ms, float* ls, float* al)
        {
            const int T = HostTile;
            int qn = pr.Vectors, rows = pr.Rows, d = pr.HeadDim, dv = pr.ValueDim;
            // Pieces of the tile inside one page each: scores are per key, and the value sums
            // run key by key in order either way (a later piece's factor is exactly 1), so the
            // bits do not depend on the page size or the widening.
            for (int t0 = 0; t0 < n;)
            {
                int t1 = PieceEnd(k0, t0, n);
                float* k = typeof(TStorage) == typeof(float) ? KeyRow(b, kvh, k0 + t0)
                    : WidenRows(_keys + cache.KeyOffset(b, kvh, k0 + t0), kw, (t1 - t0) * d);
                MicroKernels<TOps, TV>.RowScores(qs, qn, d, k, d, t1 - t0, ps + t0, T);
                t0 = t1;
            }
            int bh = b * pr.KvHeads + kvh;
            for (int v = 0; v < qn; v++)
            {
                int h = kvh * pr.Group + v / rows, pos = pos0 + v % rows;
                float* p = ps + v * T;
                for (int t = 0; t < n; t++) p[t] = score.Apply(p[t], b, h, pos, Pos(bh, k0 + t));
                Compensate(bh, k0, n, p);
                for (int t = n; t < T; t++) p[t] = float.NegativeInfinity;
                al[v] = Weights(p, ref ms[v], ref ls[v]);
            }
            for (int t0 = 0; t0 < n;)
            {
                int t1 = PieceEnd(k0, t0, n);
                float* v = typeof(TStorage) == typeof(float) ? ValueRow(b, kvh, k0 + t0)
                    : WidenRows(_values + cache.ValueOffset(b, kvh, k0 + t0), vw, (t1 - t0) * dv);
                if (t0 > 0)
                    for (int i = 0; i < qn; i++) al[i] = 1f;
                MicroKernels<TOps, TV>.AccumulateValues(ps + t0, v, os, al, qn, t1 - t0, dv, T, dv);
                t0 = t1;
            }
        }

        /// <summary>Asks for the K and V rows of the next tile into L2 while this one is
        /// computed: the hardware prefetchers alone left the memory idle during each tile's
        /// products (x86 only; elsewhere nothing).</summary>
        private void Prefetch(int b, int kvh, int k0, int n)
        {
            if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
            for (int t0 = 0; t0 < n;)
            {
                int t1 = Math.Min(n, ((k0 + t0) / cache.PageSize + 1) * cache.PageSize - k0);
                PrefetchBytes((byte*)(_keys + cache.KeyOffset(b, kvh, k0 + t0)),
                    (long)(t1 - t0) * pr.HeadDim * sizeof(TStorage));
                PrefetchBytes((byte*)(_values + cache.ValueOffset(b, kvh, k0 + t0)),
                    (long)(t1 - t0) * pr.ValueDim * sizeof(TStorage));
                t0 = t1;
            }
        }

        private static void PrefetchBytes(byte* from, long bytes)
        {
            for (long at = 0; at < bytes; at += 64)
                System.Runtime.Intrinsics.X86.Sse.Prefetch1(from + at);
        }

        /// <summary>Keys of 16-bit rows widened at once in a full tile: 16 x (128 + 128) floats
        /// are 16 KB, where a whole 64-key tile's 64 KB overflowed the 48 KB L1 of the Zen 5
        /// this was measured on.</summary>
        private const int WidenedKeys = 16;

        /// <summary>The end of the piece of a full tile starting at t0: the end of t0's page,
        /// and at most <see cref="WidenedKeys"/> keys for 16-bit rows.</summary>
        private int PieceEnd(int k0, int t0, int n)
        {
            int end = Math.Min(n, ((k0 + t0) / cache.PageSize + 1) * cache.PageSize - k0);
            return typeof(TStorage) == typeof(float) ? end : Math.Min(end, t0 + WidenedKeys);
        }

        /// <summary><paramref name="count"/> contiguous elements widened into
        /// <paramref name="wide"/>, which is returned.</summary>
        private static float* WidenRows(TStorage* from, float* wide, int count)
        {
            Widen(from, wide, count);
            return wide;
        }

        private float* KeyRow(int b, int kvh, int row) =>
            (float*)(_keys + cache.KeyOffset(b, kvh, row));

        private float* ValueRow(int b, int kvh, int row) =>
            (float*)(_values + cache.ValueOffset(b, kvh, row));

        /// <summary>Online softmax (or elementwise weights) of one row of T logits in place;
        /// returns the factor on the row's previous output.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private float Weights(float* p, ref float m, ref float l)
        {
            const int T = HostTile;
            int width = TOps.Count;
            if (!TNorm.IsSoftmax)
            {
                float total = 0f;
                for (int t = 0; t < T; t++) total += p[t] = norm.Weight(p[t], m);
                l += total;
                return 1f;
            }
            float mNew = m;
            for (int t = 0; t < T; t++) mNew = MathF.Max(mNew, p[t]);
            if (float.IsNegativeInfinity(mNew))
            {
                new Span<float>(p, T).Clear();
                return 1f;
            }
            var vm = TOps.Broadcast(mNew);
            TV sum = default;
            for (int t = 0; t < T; t += width)
            {
                TV e = TOps.Exp(TOps.Sub(TOps.Load(p + t), vm));
                TOps.Store(e, p + t);
                sum = TOps.Add(sum, e);
            }
            float alpha = m == mNew ? 1f : MathF.Exp(m - mNew); // m = -inf gives 0
            l = l * alpha + TOps.SumAcross(sum);
            m = mNew;
            return alpha;
        }

        /// <summary>A partly masked tile, vector by vector and key by key: only allowed keys'
        /// K and V rows are read.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void PartialTile(int b, int kvh, int pos0, int k0, int n, int p0, int p1,
            float* qs, float* kp, float* vp, float* os, float* ps, float* ms, float* ls)
        {
            const int T = HostTile;
            int qn = pr.Vectors, rows = pr.Rows, d = pr.HeadDim, dv = pr.ValueDim;
            int bh = b * pr.KvHeads + kvh, compensation = cache.HostCompensationSlot[bh];
            for (int v = 0; v < qn; v++)
            {
                int h = kvh * pr.Group + v / rows, pos = pos0 + v % rows;
                var kind = mask.Classify(b, h, pos0, pos0 + rows, p0, p1);
                if (kind == TileKind.Empty) continue;
                float* p = ps + v * T;
                var q = new ReadOnlySpan<float>(qs + v * d, d);
                for (int t = 0; t < T; t++)
                {
                    int k = k0 + t, kpos = t < n ? Pos(bh, k) : 0;
                    p[t] = t < n && (kind == TileKind.Full || mask.Allows(b, h, pos, kpos))
                        ? score.Apply(TensorPrimitives.Dot(q, new ReadOnlySpan<float>(
                            kp is null ? KeyRow(b, kvh, k) : kp + t * d, d)), b, h, pos, kpos)
                            + (k == compensation ? cache.HostCompensationLogCount[bh] : 0f)
                        : float.NegativeInfinity;
                }
                bool masked = true;
                for (int t = 0; t < n; t++) masked &= float.IsNegativeInfinity(p[t]);
                if (masked && TNorm.IsSoftmax) continue;
                float alpha = Weights(p, ref ms[v], ref ls[v]);
                var o = new Span<float>(os + v * dv, dv);
                if (alpha != 1f) TensorPrimitives.Multiply(o, alpha, o);
                for (int t = 0; t < n; t++)
                    if (p[t] != 0f)
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(
                            vp is null ? ValueRow(b, kvh, k0 + t) : vp + t * dv, dv), p[t], o, o);
            }
        }

        /// <summary>Rows [k0, k0 + n) of (b, kvh) widened to float into <paramref name="wide"/>,
        /// (n, dim) dense.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private float* Widened(TStorage* source, int b, int kvh, int k0, int n, int dim,
            float* wide, bool keys)
        {
            long Offset(int row) =>
                keys ? cache.KeyOffset(b, kvh, row) : cache.ValueOffset(b, kvh, row);
            if (k0 / cache.PageSize == (k0 + n - 1) / cache.PageSize)
                Widen(source + Offset(k0), wide, n * dim);
            else
                for (int t = 0; t < n; t++) Widen(source + Offset(k0 + t), wide + t * dim, dim);
            return wide;
        }

        private static void Widen(TStorage* from, float* to, int count)
        {
            var dst = new Span<float>(to, count);
            if (typeof(TStorage) == typeof(float))
                new ReadOnlySpan<float>(from, count).CopyTo(dst);
            else if (typeof(TStorage) == typeof(Half))
                ElementConvert.ToSingle(new ReadOnlySpan<Half>(from, count), dst);
            else
                ElementConvert.ToSingle(new ReadOnlySpan<BFloat16>(from, count), dst);
        }
    }
}
