using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Managed.Kernels.Simd;
using Managed.Kernels.Variants;

namespace Managed.Kernels;

public static partial class FlashAttention
{
    private static unsafe void ForwardCpu<TScore, TMask>(
        AttentionShape s, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, Span<float> output, Span<float> logSumExp,
        TScore score, TMask mask, AttentionOptions options, FlashAttentionTuning tuning)
        where TScore : unmanaged, IScoreModifier
        where TMask : unmanaged, IMaskPredicate
    {
        fixed (float* q = query, k = key, v = value, o = output, lse = logSumExp)
        {
            var p = new CpuPointers(q, k, v, o, logSumExp.IsEmpty ? null : lse);
            switch (SimdSelect.Resolve(tuning.Simd))
            {
                case SimdWidth.V512:
                    CpuKernel<TScore, TMask, Simd512, Vector512<float>>.Run(s, p, score, mask, options, tuning);
                    break;
                case SimdWidth.V256:
                    CpuKernel<TScore, TMask, Simd256, Vector256<float>>.Run(s, p, score, mask, options, tuning);
                    break;
                default:
                    CpuKernel<TScore, TMask, Simd128, Vector128<float>>.Run(s, p, score, mask, options, tuning);
                    break;
            }
        }
    }
}

/// <summary>Raw pointers of one CPU call; the caller keeps them pinned for the call.</summary>
internal readonly unsafe struct CpuPointers(float* q, float* k, float* v, float* o, float* lse)
{
    public readonly float* Q = q, K = k, V = v, O = o, Lse = lse;
}

/// <summary>
/// The CPU flash-attention kernel. Phase 1 transposes K into key tiles of (headDim, keyTile)
/// so Q.K^T is a broadcast-FMA over keys; phase 2 runs one (batch, head, query tile) per work
/// item: S = Q K^T, modifier, mask, online softmax, O += P V, all on tiles that stay in cache.
/// </summary>
internal static unsafe class CpuKernel<TScore, TMask, TOps, TV>
    where TScore : unmanaged, IScoreModifier
    where TMask : unmanaged, IMaskPredicate
    where TOps : struct, ISimd<TV>
    where TV : unmanaged
{
    public static void Run(AttentionShape s, CpuPointers p, TScore score, TMask mask,
        AttentionOptions options, FlashAttentionTuning tuning)
    {
        int bk = tuning.KeyTile, bq = Math.Min(tuning.QueryTile, s.SeqQ), d = s.HeadDim;
        int keyTiles = (s.SeqK + bk - 1) / bk;
        long ktLength = (long)s.Batch * s.KvHeads * keyTiles * d * bk;
        if (ktLength > Array.MaxLength) throw new ArgumentException($"{s} is too large for the CPU kernel.");
        float[] ktArray = ArrayPool<float>.Shared.Rent((int)ktLength);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = tuning.MaxDegreeOfParallelism };
        try
        {
            fixed (float* ktPinned = ktArray)
            {
                nint kt = (nint)ktPinned;
                // (batch, kvHeads, keyTiles, headDim, keyTile), zero past seqK
                Parallel.For(0, s.Batch * s.KvHeads * keyTiles, parallel,
                    t => TransposeKeyTile(s, p, (float*)kt, t, bk, keyTiles));

                int queryTiles = (s.SeqQ + bq - 1) / bq;
                int items = s.Batch * s.Heads * queryTiles;
                var job = new Job(s, p, (float*)kt, score, mask, options.ScaleFor(d),
                    s.QueryOffset(options.Alignment), bq, bk, keyTiles, queryTiles);
                // Last query tiles first: under causal masks they are the heaviest.
                Parallel.For(0, items, parallel, () => new Scratch(bq, bk, d, s.ValueDim),
                    (i, _, scratch) => { job.Item(items - 1 - i, scratch); return scratch; },
                    scratch => scratch.Dispose());
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(ktArray);
        }
    }

    private static void TransposeKeyTile(AttentionShape s, CpuPointers p, float* kt, int t,
        int bk, int keyTiles)
    {
        int d = s.HeadDim, tile = t % keyTiles, bh = t / keyTiles;
        int k0 = tile * bk, cols = Math.Min(bk, s.SeqK - k0);
        float* src = p.K + ((long)bh * s.SeqK + k0) * d;
        float* dst = kt + (long)t * d * bk;
        for (int j = 0; j < cols; j++)
            for (int c = 0; c < d; c++)
                dst[c * bk + j] = src[(long)j * d + c];
        if (cols < bk)
            for (int c = 0; c < d; c++)
                new Span<float>(dst + c * bk + cols, bk - cols).Clear();
    }

    /// <summary>Per-thread tiles, pinned for the thread's lifetime.</summary>
    private sealed class Scratch : IDisposable
    {
        public readonly float* Q, S, O, M, L;
        private readonly float[] _memory; // pinned (POH): the pointers stay valid

        public Scratch(int bq, int bk, int d, int dv)
        {
            int pad = 16;
            _memory = GC.AllocateUninitializedArray<float>(bq * d + bq * bk + bq * dv + 2 * bq + 5 * pad,
                pinned: true);
            float* baseP = (float*)Unsafe.AsPointer(ref _memory[0]);
            // Align each tile to 64 bytes so full-width loads never split cache lines.
            float* at = (float*)(((nint)baseP + 63) & ~(nint)63);
            Q = at; at = Align(at + bq * d);
            S = at; at = Align(at + bq * bk);
            O = at; at = Align(at + bq * dv);
            M = at; at = Align(at + bq);
            L = at;
        }

        private static float* Align(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

        public void Dispose() { }
    }

    private readonly struct Job(AttentionShape s, CpuPointers p, float* kt, TScore score, TMask mask,
        float scale, int queryOffset, int bq, int bk, int keyTiles, int queryTiles)
    {
        public void Item(int item, Scratch t)
        {
            int qt = item % queryTiles, bh = item / queryTiles;
            int h = bh % s.Heads, b = bh / s.Heads;
            int kvh = h / s.GroupSize;
            int d = s.HeadDim, dv = s.ValueDim;
            int q0 = qt * bq, rows = Math.Min(bq, s.SeqQ - q0);
            int pos0 = q0 + queryOffset;

            float* qSrc = p.Q + ((long)bh * s.SeqQ + q0) * d;
            for (int i = 0; i < rows * d; i++) t.Q[i] = qSrc[i] * scale;
            for (int r = 0; r < rows; r++) { t.M[r] = float.NegativeInfinity; t.L[r] = 0f; }
            new Span<float>(t.O, rows * dv).Clear();

            int kvBh = b * s.KvHeads + kvh;
            float* vHead = p.V + (long)kvBh * s.SeqK * dv;
            for (int tile = 0; tile < keyTiles; tile++)
            {
                int k0 = tile * bk, cols = Math.Min(bk, s.SeqK - k0);
                var kind = mask.Classify(b, h, pos0, pos0 + rows, k0, k0 + cols);
                if (kind == TileKind.Empty) continue;
                int width = (cols + 15) & ~15; // padded to 16: every SIMD width divides it
                float* ktTile = kt + ((long)kvBh * keyTiles + tile) * d * bk;
                MicroKernels<TOps, TV>.ScoreTile(t.Q, ktTile, t.S, rows, width, d, bk);
                for (int r = 0; r < rows; r++)
                {
                    float* row = t.S + r * bk;
                    int pos = pos0 + r;
                    score.ApplyRow(new Span<float>(row, cols), b, h, pos, k0);
                    if (kind == TileKind.Partial)
                        for (int j = 0; j < cols; j++)
                            if (!mask.Allows(b, h, pos, k0 + j)) row[j] = float.NegativeInfinity;
                    for (int j = cols; j < width; j++) row[j] = float.NegativeInfinity;
                    OnlineSoftmaxRow(row, width, ref t.M[r], ref t.L[r], t.O + r * dv, dv);
                }
                MicroKernels<TOps, TV>.AccumulateValues(t.S, vHead + (long)k0 * dv, t.O, rows, cols, dv, bk);
            }

            float* oDst = p.O + ((long)bh * s.SeqQ + q0) * dv;
            for (int r = 0; r < rows; r++)
            {
                float l = t.L[r];
                // l == 0 only when no key was allowed: zeros and -infinity, as documented.
                float inv = l > 0f ? 1f / l : 0f;
                for (int c = 0; c < dv; c++) oDst[r * dv + c] = t.O[r * dv + c] * inv;
                if (p.Lse != null)
                    p.Lse[(long)bh * s.SeqQ + q0 + r] = l > 0f ? t.M[r] + MathF.Log(l) : float.NegativeInfinity;
            }
        }

        /// <summary>
        /// Online softmax on one row of a tile: new max m', P = exp(S - m') in place, l and the
        /// output row rescaled by exp(m - m'). A row still fully masked gets P = 0.
        /// </summary>
        private static void OnlineSoftmaxRow(float* row, int width, ref float m, ref float l, float* o, int dv)
        {
            int n = TOps.Count;
            TV vmax = TOps.Load(row);
            for (int j = n; j < width; j += n) vmax = TOps.Max(vmax, TOps.Load(row + j));
            float tileMax = TOps.MaxAcross(vmax);
            float mNew = MathF.Max(m, tileMax);
            if (float.IsNegativeInfinity(mNew))
            {
                new Span<float>(row, width).Clear();
                return;
            }
            var vm = TOps.Broadcast(mNew);
            TV vsum = TOps.Broadcast(0f);
            for (int j = 0; j < width; j += n)
            {
                TV e = TOps.Exp(TOps.Sub(TOps.Load(row + j), vm));
                TOps.Store(e, row + j);
                vsum = TOps.Add(vsum, e);
            }
            float alpha = MathF.Exp(m - mNew); // m = -inf gives 0
            if (alpha != 1f)
                for (int c = 0; c < dv; c++) o[c] *= alpha;
            l = l * alpha + TOps.SumAcross(vsum);
            m = mNew;
        }
    }
}
