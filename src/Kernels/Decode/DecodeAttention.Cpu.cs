using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Kernels.Decode;

// The host path: work items (sequence, KV head, part) spread over threads; each reads its keys'
// rows in place (float) or widened with SIMD a 64-key tile at a time (Half, BFloat16), SIMD dot
// products and axpys over the head dim; no transposes. Then the parts are merged.
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
            var job = new HostJob<TElement, TStorage, TScore, TMask, TNorm>(cache, pr, q, stats,
                partO, partM, partL, score, mask, norm);
            int threads = Math.Min(pr.Threads, items);
            if (threads <= 1)
                for (int i = 0; i < items; i++) job.Item(i);
            else
                Parallel.For(0, items, new ParallelOptions { MaxDegreeOfParallelism = threads },
                    job.Item);
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

    /// <summary>One call's host work items: (sequence, KV head, part).</summary>
    private sealed class HostJob<TElement, TStorage, TScore, TMask, TNorm>(
        KvCache<TStorage> cache, DecodeProblem pr, float[] query, float[]? rowStats,
        float[] partO, float[] partM, float[] partL, TScore score, TMask mask, TNorm norm)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Item(int item)
        {
            int s = item % pr.Splits, bk = item / pr.Splits;
            int kvh = bk % pr.KvHeads, b = bk / pr.KvHeads;
            int qn = pr.Vectors, d = pr.HeadDim, dv = pr.ValueDim, g = pr.Group, rows = pr.Rows;
            int length = cache.HostLengths[b], pos0 = length - rows;
            var o = partO.AsSpan(item * qn * dv, qn * dv);
            var m = partM.AsSpan(item * qn, qn);
            var l = partL.AsSpan(item * qn, qn);
            o.Clear();
            l.Clear();
            for (int v = 0; v < qn; v++)
            {
                int h = kvh * g + v / rows, r = v % rows;
                float stat = rowStats is null ? 0f : rowStats[(b * pr.Heads + h) * rows + r];
                m[v] = TNorm.IsSoftmax ? float.NegativeInfinity : norm.RowParameter(pos0 + r, stat);
            }
            var (lo, hi) = DecodeProblem.Part(length, pr.Splits, s);
            // The keys any head of the group can reach.
            int kStart = int.MaxValue, kEnd = int.MinValue;
            for (int j = 0; j < g; j++)
            {
                kStart = Math.Min(kStart, mask.KeyStart(b, kvh * g + j, pos0, pos0 + rows));
                kEnd = Math.Max(kEnd, mask.KeyEnd(b, kvh * g + j, pos0, pos0 + rows));
            }
            lo = Math.Max(lo, kStart);
            hi = Math.Min(hi, kEnd);
            if (lo >= hi) return;

            float[] scratch = ArrayPool<float>.Shared.Rent(
                qn * d + HostTile * (d + dv + 1) + g);
            try
            {
                var qs = scratch.AsSpan(0, qn * d);
                for (int v = 0; v < qn; v++)
                {
                    int h = kvh * g + v / rows, r = v % rows;
                    TensorPrimitives.Multiply(
                        query.AsSpan(((b * pr.Heads + h) * rows + r) * d, d), pr.Scale,
                        qs.Slice(v * d, d));
                }
                var kWide = scratch.AsSpan(qn * d, HostTile * d);
                var vWide = scratch.AsSpan(qn * d + HostTile * d, HostTile * dv);
                var logits = scratch.AsSpan(qn * d + HostTile * (d + dv), HostTile);
                Span<TileKind> kinds = stackalloc TileKind[8];
                for (int k0 = lo; k0 < hi;)
                {
                    int k1 = Math.Min(k0 + HostTile, hi), n = k1 - k0;
                    bool any = false;
                    for (int j = 0; j < g; j++)
                    {
                        var kind = mask.Classify(b, kvh * g + j, pos0, pos0 + rows, k0, k1);
                        if (j < kinds.Length) kinds[j] = kind;
                        any |= kind != TileKind.Empty;
                    }
                    if (!any) { k0 = k1; continue; }
                    var keys = Rows(cache.HostKeys, b, kvh, k0, n, d, kWide, keys: true);
                    var values = Rows(cache.HostValues, b, kvh, k0, n, dv, vWide, keys: false);
                    for (int v = 0; v < qn; v++)
                    {
                        int j = v / rows, h = kvh * g + j, pos = pos0 + v % rows;
                        var kind = j < kinds.Length ? kinds[j]
                            : mask.Classify(b, h, pos0, pos0 + rows, k0, k1);
                        if (kind == TileKind.Empty) continue;
                        var qv = qs.Slice(v * d, d);
                        for (int t = 0; t < n; t++)
                        {
                            int k = k0 + t;
                            logits[t] = kind == TileKind.Full || mask.Allows(b, h, pos, k)
                                ? score.Apply(TensorPrimitives.Dot(qv, keys.Slice(t * d, d)), b, h, pos, k)
                                : float.NegativeInfinity;
                        }
                        Accumulate(logits[..n], values, dv, ref m[v], ref l[v], o.Slice(v * dv, dv));
                    }
                    k0 = k1;
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
            }
        }

        /// <summary>Rows [k0, k0 + n) of (b, kvh) as floats: in place for float storage within
        /// one page, else widened or gathered into <paramref name="wide"/> (the tiles and so
        /// the arithmetic do not depend on the page size).</summary>
        private ReadOnlySpan<float> Rows(TStorage[] source, int b, int kvh, int k0, int n,
            int dim, Span<float> wide, bool keys)
        {
            long Offset(int row) =>
                keys ? cache.KeyOffset(b, kvh, row) : cache.ValueOffset(b, kvh, row);
            if (k0 / cache.PageSize != (k0 + n - 1) / cache.PageSize)
            {
                for (int t = 0; t < n; t++)
                    Widen(source.AsSpan((int)Offset(k0 + t), dim), wide.Slice(t * dim, dim));
                return wide[..(n * dim)];
            }
            var rows = source.AsSpan((int)Offset(k0), n * dim);
            if (typeof(TStorage) == typeof(float))
                return System.Runtime.InteropServices.MemoryMarshal.Cast<TStorage, float>(rows);
            var to = wide[..(n * dim)];
            Widen(rows, to);
            return to;
        }

        private static void Widen(ReadOnlySpan<TStorage> from, Span<float> to)
        {
            if (typeof(TStorage) == typeof(float))
                System.Runtime.InteropServices.MemoryMarshal.Cast<TStorage, float>(from).CopyTo(to);
            else if (typeof(TStorage) == typeof(Half))
                ElementConvert.ToSingle(
                    System.Runtime.InteropServices.MemoryMarshal.Cast<TStorage, Half>(from), to);
            else
                ElementConvert.ToSingle(
                    System.Runtime.InteropServices.MemoryMarshal.Cast<TStorage, BFloat16>(from), to);
        }

        /// <summary>Online softmax (or elementwise weights) of one query row over a tile's
        /// logits, and O += p V.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Accumulate(Span<float> logits, ReadOnlySpan<float> values, int dv,
            ref float m, ref float l, Span<float> o)
        {
            int n = logits.Length;
            if (!TNorm.IsSoftmax)
            {
                for (int t = 0; t < n; t++)
                {
                    float w = norm.Weight(logits[t], m);
                    if (w == 0f) continue;
                    l += w;
                    TensorPrimitives.MultiplyAdd(values.Slice(t * dv, dv), w, o, o);
                }
                return;
            }
            float mNew = m;
            for (int t = 0; t < n; t++) mNew = MathF.Max(mNew, logits[t]);
            if (float.IsNegativeInfinity(mNew)) return; // nothing allowed yet
            if (mNew != m)
            {
                float alpha = MathF.Exp(m - mNew); // m = -inf gives 0
                l *= alpha;
                TensorPrimitives.Multiply(o, alpha, o);
                m = mNew;
            }
            for (int t = 0; t < n; t++)
            {
                float x = logits[t];
                if (float.IsNegativeInfinity(x)) continue;
                float p = MathF.Exp(x - mNew);
                l += p;
                TensorPrimitives.MultiplyAdd(values.Slice(t * dv, dv), p, o, o);
            }
        }
    }
}
