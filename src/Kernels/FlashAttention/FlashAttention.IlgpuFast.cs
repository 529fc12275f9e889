using ILGPU;
using ILGPU.Algorithms;
using Managed.Kernels.Variants;

namespace Managed.Kernels;

/// <summary>
/// The register-tiled ILGPU attention kernel for headDim, valueDim &lt;= 128: the fast path of
/// the same kernel family as <see cref="FlashAttentionIlgpu.ForwardKernel"/>, with the same
/// variant structs and contract. ILGPU keeps scalar locals in registers but puts indexed local
/// arrays in local memory, so the per-thread tiles below are written out as named scalars:
/// thread (g, c) of a 128-thread group (g = row group 0..15, c = lane in the row 0..7) owns
/// query rows g + 16i (i &lt; 4), keys c + 8j (j &lt; 8) of each 64-key tile and output columns
/// c + 8t (t &lt; 8, or &lt; 16 when TCols is wide). Q and K go through shared memory in chunks
/// of 32 head dims (so Q costs no resident shared memory), P through shared memory, V in
/// chunks of 16 keys. About 35 KB of shared memory, under the 48 KB any CUDA device allows.
/// </summary>
internal static class FlashAttentionIlgpuFast
{
    internal const int BlockQ = 64, BlockK = 64, DimChunk = 32, ValueChunk = 16, Threads = 128;

    public static void ForwardKernel<TScore, TMask, TCols, TReduce>(
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> logSumExp, GpuAttentionParams p,
        TScore score, TMask mask)
        where TScore : unmanaged, IScoreModifier
        where TMask : unmanaged, IMaskPredicate
        where TCols : struct, IFastColumns
        where TReduce : struct, IRowReduction
    {
        const int qStride = BlockQ + 1, kStride = BlockK + 1;
        // (DimChunk, BlockQ + 1): a chunk of Q, transposed and padded against bank conflicts
        var qs = SharedMemory.Allocate<float>(DimChunk * (BlockQ + 1));
        // (DimChunk, BlockK + 1): a chunk of K, transposed; then (ValueChunk, maxDim) of V
        var kv = SharedMemory.Allocate<float>(DimChunk * (BlockK + 1));
        // (BlockK, BlockQ + 1): P transposed
        var ps = SharedMemory.Allocate<float>(BlockK * (BlockQ + 1));
        // (BlockQ, 8): partial row max / sum for the shared-memory reduction
        var red = SharedMemory.Allocate<float>(BlockQ * 8);

        int maxDim = TCols.Wide ? 128 : 64;
        int tid = Group.IdxX, g = tid / 8, c = tid - g * 8;
        int blk = Grid.IdxX;
        int bh = blk / p.QueryTiles;
        int qt = p.QueryTiles - 1 - (blk - bh * p.QueryTiles); // heaviest causal tiles first
        int b = bh / p.Heads, h = bh - b * p.Heads, kvh = h / p.GroupSize;
        int q0 = qt * BlockQ, rows = XMath.Min(BlockQ, p.SeqQ - q0), pos0 = q0 + p.QueryOffset;
        int d = p.HeadDim, dv = p.ValueDim;
        int qBase = (bh * p.SeqQ + q0) * d;
        int kvRow0 = (b * p.KvHeads + kvh) * p.SeqK;

        int r0 = g + 0, qp0 = pos0 + r0;
        bool valid0 = r0 < rows;
        float m0 = float.NegativeInfinity, l0 = 0f;
        int r1 = g + 16, qp1 = pos0 + r1;
        bool valid1 = r1 < rows;
        float m1 = float.NegativeInfinity, l1 = 0f;
        int r2 = g + 32, qp2 = pos0 + r2;
        bool valid2 = r2 < rows;
        float m2 = float.NegativeInfinity, l2 = 0f;
        int r3 = g + 48, qp3 = pos0 + r3;
        bool valid3 = r3 < rows;
        float m3 = float.NegativeInfinity, l3 = 0f;
        float o0_0 = 0f, o0_1 = 0f, o0_2 = 0f, o0_3 = 0f, o0_4 = 0f, o0_5 = 0f, o0_6 = 0f, o0_7 = 0f, o0_8 = 0f, o0_9 = 0f, o0_10 = 0f, o0_11 = 0f, o0_12 = 0f, o0_13 = 0f, o0_14 = 0f, o0_15 = 0f;
        float o1_0 = 0f, o1_1 = 0f, o1_2 = 0f, o1_3 = 0f, o1_4 = 0f, o1_5 = 0f, o1_6 = 0f, o1_7 = 0f, o1_8 = 0f, o1_9 = 0f, o1_10 = 0f, o1_11 = 0f, o1_12 = 0f, o1_13 = 0f, o1_14 = 0f, o1_15 = 0f;
        float o2_0 = 0f, o2_1 = 0f, o2_2 = 0f, o2_3 = 0f, o2_4 = 0f, o2_5 = 0f, o2_6 = 0f, o2_7 = 0f, o2_8 = 0f, o2_9 = 0f, o2_10 = 0f, o2_11 = 0f, o2_12 = 0f, o2_13 = 0f, o2_14 = 0f, o2_15 = 0f;
        float o3_0 = 0f, o3_1 = 0f, o3_2 = 0f, o3_3 = 0f, o3_4 = 0f, o3_5 = 0f, o3_6 = 0f, o3_7 = 0f, o3_8 = 0f, o3_9 = 0f, o3_10 = 0f, o3_11 = 0f, o3_12 = 0f, o3_13 = 0f, o3_14 = 0f, o3_15 = 0f;

        int keyTiles = (p.SeqK + BlockK - 1) / BlockK;
        for (int tile = 0; tile < keyTiles; tile++)
        {
            int k0 = tile * BlockK, cols = XMath.Min(BlockK, p.SeqK - k0);
            var kind = mask.Classify(b, h, pos0, pos0 + rows, k0, k0 + cols);
            if (kind == TileKind.Empty) continue; // uniform across the group

            float s0_0 = 0f, s0_1 = 0f, s0_2 = 0f, s0_3 = 0f, s0_4 = 0f, s0_5 = 0f, s0_6 = 0f, s0_7 = 0f;
            float s1_0 = 0f, s1_1 = 0f, s1_2 = 0f, s1_3 = 0f, s1_4 = 0f, s1_5 = 0f, s1_6 = 0f, s1_7 = 0f;
            float s2_0 = 0f, s2_1 = 0f, s2_2 = 0f, s2_3 = 0f, s2_4 = 0f, s2_5 = 0f, s2_6 = 0f, s2_7 = 0f;
            float s3_0 = 0f, s3_1 = 0f, s3_2 = 0f, s3_3 = 0f, s3_4 = 0f, s3_5 = 0f, s3_6 = 0f, s3_7 = 0f;

            for (int dc = 0; dc < d; dc += DimChunk)
            {
                Group.Barrier(); // the previous chunk (or V chunk) is consumed
                for (int e = tid; e < BlockQ * DimChunk; e += Threads)
                {
                    int r = e / DimChunk, cc = e - r * DimChunk, gd = dc + cc;
                    qs[cc * qStride + r] = r < rows && gd < d ? query[qBase + r * d + gd] * p.Scale : 0f;
                }
                for (int e = tid; e < BlockK * DimChunk; e += Threads)
                {
                    int j = e / DimChunk, cc = e - j * DimChunk, gd = dc + cc;
                    kv[cc * kStride + j] = j < cols && gd < d ? key[(kvRow0 + k0 + j) * d + gd] : 0f;
                }
                Group.Barrier();
                for (int cc = 0; cc < DimChunk; cc++)
                {
                    int qo = cc * qStride + g, ko = cc * kStride + c;
                    float qv0 = qs[qo + 0];
                    float qv1 = qs[qo + 16];
                    float qv2 = qs[qo + 32];
                    float qv3 = qs[qo + 48];
                    float kr0 = kv[ko + 0];
                    float kr1 = kv[ko + 8];
                    float kr2 = kv[ko + 16];
                    float kr3 = kv[ko + 24];
                    float kr4 = kv[ko + 32];
                    float kr5 = kv[ko + 40];
                    float kr6 = kv[ko + 48];
                    float kr7 = kv[ko + 56];
                    s0_0 += qv0 * kr0; s0_1 += qv0 * kr1; s0_2 += qv0 * kr2; s0_3 += qv0 * kr3; s0_4 += qv0 * kr4; s0_5 += qv0 * kr5; s0_6 += qv0 * kr6; s0_7 += qv0 * kr7;
                    s1_0 += qv1 * kr0; s1_1 += qv1 * kr1; s1_2 += qv1 * kr2; s1_3 += qv1 * kr3; s1_4 += qv1 * kr4; s1_5 += qv1 * kr5; s1_6 += qv1 * kr6; s1_7 += qv1 * kr7;
                    s2_0 += qv2 * kr0; s2_1 += qv2 * kr1; s2_2 += qv2 * kr2; s2_3 += qv2 * kr3; s2_4 += qv2 * kr4; s2_5 += qv2 * kr5; s2_6 += qv2 * kr6; s2_7 += qv2 * kr7;
                    s3_0 += qv3 * kr0; s3_1 += qv3 * kr1; s3_2 += qv3 * kr2; s3_3 += qv3 * kr3; s3_4 += qv3 * kr4; s3_5 += qv3 * kr5; s3_6 += qv3 * kr6; s3_7 += qv3 * kr7;
                }
            }

            int kk0 = k0 + c + 0;
            int kk1 = k0 + c + 8;
            int kk2 = k0 + c + 16;
            int kk3 = k0 + c + 24;
            int kk4 = k0 + c + 32;
            int kk5 = k0 + c + 40;
            int kk6 = k0 + c + 48;
            int kk7 = k0 + c + 56;

            s0_0 = Logit(s0_0, kind, score, mask, b, h, qp0, kk0, valid0, p.SeqK);
            s0_1 = Logit(s0_1, kind, score, mask, b, h, qp0, kk1, valid0, p.SeqK);
            s0_2 = Logit(s0_2, kind, score, mask, b, h, qp0, kk2, valid0, p.SeqK);
            s0_3 = Logit(s0_3, kind, score, mask, b, h, qp0, kk3, valid0, p.SeqK);
            s0_4 = Logit(s0_4, kind, score, mask, b, h, qp0, kk4, valid0, p.SeqK);
            s0_5 = Logit(s0_5, kind, score, mask, b, h, qp0, kk5, valid0, p.SeqK);
            s0_6 = Logit(s0_6, kind, score, mask, b, h, qp0, kk6, valid0, p.SeqK);
            s0_7 = Logit(s0_7, kind, score, mask, b, h, qp0, kk7, valid0, p.SeqK);
            s1_0 = Logit(s1_0, kind, score, mask, b, h, qp1, kk0, valid1, p.SeqK);
            s1_1 = Logit(s1_1, kind, score, mask, b, h, qp1, kk1, valid1, p.SeqK);
            s1_2 = Logit(s1_2, kind, score, mask, b, h, qp1, kk2, valid1, p.SeqK);
            s1_3 = Logit(s1_3, kind, score, mask, b, h, qp1, kk3, valid1, p.SeqK);
            s1_4 = Logit(s1_4, kind, score, mask, b, h, qp1, kk4, valid1, p.SeqK);
            s1_5 = Logit(s1_5, kind, score, mask, b, h, qp1, kk5, valid1, p.SeqK);
            s1_6 = Logit(s1_6, kind, score, mask, b, h, qp1, kk6, valid1, p.SeqK);
            s1_7 = Logit(s1_7, kind, score, mask, b, h, qp1, kk7, valid1, p.SeqK);
            s2_0 = Logit(s2_0, kind, score, mask, b, h, qp2, kk0, valid2, p.SeqK);
            s2_1 = Logit(s2_1, kind, score, mask, b, h, qp2, kk1, valid2, p.SeqK);
            s2_2 = Logit(s2_2, kind, score, mask, b, h, qp2, kk2, valid2, p.SeqK);
            s2_3 = Logit(s2_3, kind, score, mask, b, h, qp2, kk3, valid2, p.SeqK);
            s2_4 = Logit(s2_4, kind, score, mask, b, h, qp2, kk4, valid2, p.SeqK);
            s2_5 = Logit(s2_5, kind, score, mask, b, h, qp2, kk5, valid2, p.SeqK);
            s2_6 = Logit(s2_6, kind, score, mask, b, h, qp2, kk6, valid2, p.SeqK);
            s2_7 = Logit(s2_7, kind, score, mask, b, h, qp2, kk7, valid2, p.SeqK);
            s3_0 = Logit(s3_0, kind, score, mask, b, h, qp3, kk0, valid3, p.SeqK);
            s3_1 = Logit(s3_1, kind, score, mask, b, h, qp3, kk1, valid3, p.SeqK);
            s3_2 = Logit(s3_2, kind, score, mask, b, h, qp3, kk2, valid3, p.SeqK);
            s3_3 = Logit(s3_3, kind, score, mask, b, h, qp3, kk3, valid3, p.SeqK);
            s3_4 = Logit(s3_4, kind, score, mask, b, h, qp3, kk4, valid3, p.SeqK);
            s3_5 = Logit(s3_5, kind, score, mask, b, h, qp3, kk5, valid3, p.SeqK);
            s3_6 = Logit(s3_6, kind, score, mask, b, h, qp3, kk6, valid3, p.SeqK);
            s3_7 = Logit(s3_7, kind, score, mask, b, h, qp3, kk7, valid3, p.SeqK);

            // Online softmax: new running max m' of each row over its 8 threads; O and l are
            // rescaled by exp(m - m'); a row with no allowed key so far keeps m = -inf.
            float mx0 = ReduceMax<TReduce>(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(s0_0, s0_1), s0_2), s0_3), s0_4), s0_5), s0_6), s0_7), red, r0, c);
            float mx1 = ReduceMax<TReduce>(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(s1_0, s1_1), s1_2), s1_3), s1_4), s1_5), s1_6), s1_7), red, r1, c);
            float mx2 = ReduceMax<TReduce>(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(s2_0, s2_1), s2_2), s2_3), s2_4), s2_5), s2_6), s2_7), red, r2, c);
            float mx3 = ReduceMax<TReduce>(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(XMath.Max(s3_0, s3_1), s3_2), s3_3), s3_4), s3_5), s3_6), s3_7), red, r3, c);
            float mn0 = XMath.Max(m0, mx0);
            float a0 = mn0 == float.NegativeInfinity ? 1f : XMath.Exp(m0 - mn0);
            m0 = mn0;
            o0_0 *= a0; o0_1 *= a0; o0_2 *= a0; o0_3 *= a0; o0_4 *= a0; o0_5 *= a0; o0_6 *= a0; o0_7 *= a0;
            if (TCols.Wide) { o0_8 *= a0; o0_9 *= a0; o0_10 *= a0; o0_11 *= a0; o0_12 *= a0; o0_13 *= a0; o0_14 *= a0; o0_15 *= a0; }
            s0_0 = Prob(s0_0, mn0);
            s0_1 = Prob(s0_1, mn0);
            s0_2 = Prob(s0_2, mn0);
            s0_3 = Prob(s0_3, mn0);
            s0_4 = Prob(s0_4, mn0);
            s0_5 = Prob(s0_5, mn0);
            s0_6 = Prob(s0_6, mn0);
            s0_7 = Prob(s0_7, mn0);
            l0 = l0 * a0 + ReduceSum<TReduce>(s0_0 + s0_1 + s0_2 + s0_3 + s0_4 + s0_5 + s0_6 + s0_7, red, r0, c);
            float mn1 = XMath.Max(m1, mx1);
            float a1 = mn1 == float.NegativeInfinity ? 1f : XMath.Exp(m1 - mn1);
            m1 = mn1;
            o1_0 *= a1; o1_1 *= a1; o1_2 *= a1; o1_3 *= a1; o1_4 *= a1; o1_5 *= a1; o1_6 *= a1; o1_7 *= a1;
            if (TCols.Wide) { o1_8 *= a1; o1_9 *= a1; o1_10 *= a1; o1_11 *= a1; o1_12 *= a1; o1_13 *= a1; o1_14 *= a1; o1_15 *= a1; }
            s1_0 = Prob(s1_0, mn1);
            s1_1 = Prob(s1_1, mn1);
            s1_2 = Prob(s1_2, mn1);
            s1_3 = Prob(s1_3, mn1);
            s1_4 = Prob(s1_4, mn1);
            s1_5 = Prob(s1_5, mn1);
            s1_6 = Prob(s1_6, mn1);
            s1_7 = Prob(s1_7, mn1);
            l1 = l1 * a1 + ReduceSum<TReduce>(s1_0 + s1_1 + s1_2 + s1_3 + s1_4 + s1_5 + s1_6 + s1_7, red, r1, c);
            float mn2 = XMath.Max(m2, mx2);
            float a2 = mn2 == float.NegativeInfinity ? 1f : XMath.Exp(m2 - mn2);
            m2 = mn2;
            o2_0 *= a2; o2_1 *= a2; o2_2 *= a2; o2_3 *= a2; o2_4 *= a2; o2_5 *= a2; o2_6 *= a2; o2_7 *= a2;
            if (TCols.Wide) { o2_8 *= a2; o2_9 *= a2; o2_10 *= a2; o2_11 *= a2; o2_12 *= a2; o2_13 *= a2; o2_14 *= a2; o2_15 *= a2; }
            s2_0 = Prob(s2_0, mn2);
            s2_1 = Prob(s2_1, mn2);
            s2_2 = Prob(s2_2, mn2);
            s2_3 = Prob(s2_3, mn2);
            s2_4 = Prob(s2_4, mn2);
            s2_5 = Prob(s2_5, mn2);
            s2_6 = Prob(s2_6, mn2);
            s2_7 = Prob(s2_7, mn2);
            l2 = l2 * a2 + ReduceSum<TReduce>(s2_0 + s2_1 + s2_2 + s2_3 + s2_4 + s2_5 + s2_6 + s2_7, red, r2, c);
            float mn3 = XMath.Max(m3, mx3);
            float a3 = mn3 == float.NegativeInfinity ? 1f : XMath.Exp(m3 - mn3);
            m3 = mn3;
            o3_0 *= a3; o3_1 *= a3; o3_2 *= a3; o3_3 *= a3; o3_4 *= a3; o3_5 *= a3; o3_6 *= a3; o3_7 *= a3;
            if (TCols.Wide) { o3_8 *= a3; o3_9 *= a3; o3_10 *= a3; o3_11 *= a3; o3_12 *= a3; o3_13 *= a3; o3_14 *= a3; o3_15 *= a3; }
            s3_0 = Prob(s3_0, mn3);
            s3_1 = Prob(s3_1, mn3);
            s3_2 = Prob(s3_2, mn3);
            s3_3 = Prob(s3_3, mn3);
            s3_4 = Prob(s3_4, mn3);
            s3_5 = Prob(s3_5, mn3);
            s3_6 = Prob(s3_6, mn3);
            s3_7 = Prob(s3_7, mn3);
            l3 = l3 * a3 + ReduceSum<TReduce>(s3_0 + s3_1 + s3_2 + s3_3 + s3_4 + s3_5 + s3_6 + s3_7, red, r3, c);
            ps[(c + 0) * qStride + r0] = s0_0;
            ps[(c + 8) * qStride + r0] = s0_1;
            ps[(c + 16) * qStride + r0] = s0_2;
            ps[(c + 24) * qStride + r0] = s0_3;
            ps[(c + 32) * qStride + r0] = s0_4;
            ps[(c + 40) * qStride + r0] = s0_5;
            ps[(c + 48) * qStride + r0] = s0_6;
            ps[(c + 56) * qStride + r0] = s0_7;
            ps[(c + 0) * qStride + r1] = s1_0;
            ps[(c + 8) * qStride + r1] = s1_1;
            ps[(c + 16) * qStride + r1] = s1_2;
            ps[(c + 24) * qStride + r1] = s1_3;
            ps[(c + 32) * qStride + r1] = s1_4;
            ps[(c + 40) * qStride + r1] = s1_5;
            ps[(c + 48) * qStride + r1] = s1_6;
            ps[(c + 56) * qStride + r1] = s1_7;
            ps[(c + 0) * qStride + r2] = s2_0;
            ps[(c + 8) * qStride + r2] = s2_1;
            ps[(c + 16) * qStride + r2] = s2_2;
            ps[(c + 24) * qStride + r2] = s2_3;
            ps[(c + 32) * qStride + r2] = s2_4;
            ps[(c + 40) * qStride + r2] = s2_5;
            ps[(c + 48) * qStride + r2] = s2_6;
            ps[(c + 56) * qStride + r2] = s2_7;
            ps[(c + 0) * qStride + r3] = s3_0;
            ps[(c + 8) * qStride + r3] = s3_1;
            ps[(c + 16) * qStride + r3] = s3_2;
            ps[(c + 24) * qStride + r3] = s3_3;
            ps[(c + 32) * qStride + r3] = s3_4;
            ps[(c + 40) * qStride + r3] = s3_5;
            ps[(c + 48) * qStride + r3] = s3_6;
            ps[(c + 56) * qStride + r3] = s3_7;

            for (int jc = 0; jc < BlockK; jc += ValueChunk)
            {
                Group.Barrier(); // P written / the previous V chunk consumed
                for (int e = tid; e < ValueChunk * maxDim; e += Threads)
                {
                    int j = e / maxDim, cc = e - j * maxDim;
                    kv[e] = jc + j < cols && cc < dv ? value[(kvRow0 + k0 + jc + j) * dv + cc] : 0f;
                }
                Group.Barrier();
                for (int j = 0; j < ValueChunk; j++)
                {
                    int po = (jc + j) * qStride + g, vo = j * maxDim + c;
                    float p0 = ps[po + 0];
                    float p1 = ps[po + 16];
                    float p2 = ps[po + 32];
                    float p3 = ps[po + 48];
                    float v0 = kv[vo + 0];
                    float v1 = kv[vo + 8];
                    float v2 = kv[vo + 16];
                    float v3 = kv[vo + 24];
                    float v4 = kv[vo + 32];
                    float v5 = kv[vo + 40];
                    float v6 = kv[vo + 48];
                    float v7 = kv[vo + 56];
                    o0_0 += p0 * v0; o0_1 += p0 * v1; o0_2 += p0 * v2; o0_3 += p0 * v3; o0_4 += p0 * v4; o0_5 += p0 * v5; o0_6 += p0 * v6; o0_7 += p0 * v7;
                    o1_0 += p1 * v0; o1_1 += p1 * v1; o1_2 += p1 * v2; o1_3 += p1 * v3; o1_4 += p1 * v4; o1_5 += p1 * v5; o1_6 += p1 * v6; o1_7 += p1 * v7;
                    o2_0 += p2 * v0; o2_1 += p2 * v1; o2_2 += p2 * v2; o2_3 += p2 * v3; o2_4 += p2 * v4; o2_5 += p2 * v5; o2_6 += p2 * v6; o2_7 += p2 * v7;
                    o3_0 += p3 * v0; o3_1 += p3 * v1; o3_2 += p3 * v2; o3_3 += p3 * v3; o3_4 += p3 * v4; o3_5 += p3 * v5; o3_6 += p3 * v6; o3_7 += p3 * v7;
                    if (TCols.Wide)
                    {
                        float v8 = kv[vo + 64];
                        float v9 = kv[vo + 72];
                        float v10 = kv[vo + 80];
                        float v11 = kv[vo + 88];
                        float v12 = kv[vo + 96];
                        float v13 = kv[vo + 104];
                        float v14 = kv[vo + 112];
                        float v15 = kv[vo + 120];
                        o0_8 += p0 * v8; o0_9 += p0 * v9; o0_10 += p0 * v10; o0_11 += p0 * v11; o0_12 += p0 * v12; o0_13 += p0 * v13; o0_14 += p0 * v14; o0_15 += p0 * v15;
                        o1_8 += p1 * v8; o1_9 += p1 * v9; o1_10 += p1 * v10; o1_11 += p1 * v11; o1_12 += p1 * v12; o1_13 += p1 * v13; o1_14 += p1 * v14; o1_15 += p1 * v15;
                        o2_8 += p2 * v8; o2_9 += p2 * v9; o2_10 += p2 * v10; o2_11 += p2 * v11; o2_12 += p2 * v12; o2_13 += p2 * v13; o2_14 += p2 * v14; o2_15 += p2 * v15;
                        o3_8 += p3 * v8; o3_9 += p3 * v9; o3_10 += p3 * v10; o3_11 += p3 * v11; o3_12 += p3 * v12; o3_13 += p3 * v13; o3_14 += p3 * v14; o3_15 += p3 * v15;
                    }
                }
            }
        }

        Store(output, logSumExp, p, bh, q0, r0, valid0, c, m0, l0, dv,
            o0_0, o0_1, o0_2, o0_3, o0_4, o0_5, o0_6, o0_7, o0_8, o0_9, o0_10, o0_11, o0_12, o0_13, o0_14, o0_15);
        Store(output, logSumExp, p, bh, q0, r1, valid1, c, m1, l1, dv,
            o1_0, o1_1, o1_2, o1_3, o1_4, o1_5, o1_6, o1_7, o1_8, o1_9, o1_10, o1_11, o1_12, o1_13, o1_14, o1_15);
        Store(output, logSumExp, p, bh, q0, r2, valid2, c, m2, l2, dv,
            o2_0, o2_1, o2_2, o2_3, o2_4, o2_5, o2_6, o2_7, o2_8, o2_9, o2_10, o2_11, o2_12, o2_13, o2_14, o2_15);
        Store(output, logSumExp, p, bh, q0, r3, valid3, c, m3, l3, dv,
            o3_0, o3_1, o3_2, o3_3, o3_4, o3_5, o3_6, o3_7, o3_8, o3_9, o3_10, o3_11, o3_12, o3_13, o3_14, o3_15);
    }

    /// <summary>The modified logit of an allowed pair, -inf for a masked or padded one.</summary>
    private static float Logit<TScore, TMask>(float s, TileKind kind, TScore score, TMask mask,
        int b, int h, int pos, int k, bool validRow, int seqK)
        where TScore : unmanaged, IScoreModifier
        where TMask : unmanaged, IMaskPredicate =>
        k < seqK && validRow && (kind == TileKind.Full || mask.Allows(b, h, pos, k))
            ? score.Apply(s, b, h, pos, k) : float.NegativeInfinity;

    /// <summary>exp(s - m), exactly 0 for a masked logit.</summary>
    private static float Prob(float s, float m) =>
        s == float.NegativeInfinity ? 0f : XMath.Exp(s - m);

    /// <summary>Max over the 8 threads of a row: xor butterflies, or shared memory.</summary>
    private static float ReduceMax<TReduce>(float v, ArrayView<float> red, int row, int c)
        where TReduce : struct, IRowReduction
    {
        if (TReduce.UsesShuffle)
        {
            v = XMath.Max(v, Warp.ShuffleXor(v, 4));
            v = XMath.Max(v, Warp.ShuffleXor(v, 2));
            return XMath.Max(v, Warp.ShuffleXor(v, 1));
        }
        red[row * 8 + c] = v;
        Group.Barrier();
        float r = red[row * 8];
        for (int i = 1; i < 8; i++) r = XMath.Max(r, red[row * 8 + i]);
        Group.Barrier();
        return r;
    }

    /// <summary>Sum over the 8 threads of a row.</summary>
    private static float ReduceSum<TReduce>(float v, ArrayView<float> red, int row, int c)
        where TReduce : struct, IRowReduction
    {
        if (TReduce.UsesShuffle)
        {
            v += Warp.ShuffleXor(v, 4);
            v += Warp.ShuffleXor(v, 2);
            return v + Warp.ShuffleXor(v, 1);
        }
        red[row * 8 + c] = v;
        Group.Barrier();
        float r = 0f;
        for (int i = 0; i < 8; i++) r += red[row * 8 + i];
        Group.Barrier();
        return r;
    }

    /// <summary>Writes one row's slice of O (divided by l) and, from lane 0, its log-sum-exp.
    /// A row with no allowed key (l = 0) gets zeros and -infinity.</summary>
    private static void Store(ArrayView<float> output, ArrayView<float> logSumExp,
        GpuAttentionParams p, int bh, int q0, int r, bool valid, int c, float m, float l, int dv,
        float x0, float x1, float x2, float x3, float x4, float x5, float x6, float x7, float x8, float x9, float x10, float x11, float x12, float x13, float x14, float x15)
    {
        if (!valid) return;
        float inv = l > 0f ? 1f / l : 0f;
        int o = (bh * p.SeqQ + q0 + r) * dv + c;
        if (c + 0 < dv) output[o + 0] = x0 * inv;
        if (c + 8 < dv) output[o + 8] = x1 * inv;
        if (c + 16 < dv) output[o + 16] = x2 * inv;
        if (c + 24 < dv) output[o + 24] = x3 * inv;
        if (c + 32 < dv) output[o + 32] = x4 * inv;
        if (c + 40 < dv) output[o + 40] = x5 * inv;
        if (c + 48 < dv) output[o + 48] = x6 * inv;
        if (c + 56 < dv) output[o + 56] = x7 * inv;
        if (c + 64 < dv) output[o + 64] = x8 * inv;
        if (c + 72 < dv) output[o + 72] = x9 * inv;
        if (c + 80 < dv) output[o + 80] = x10 * inv;
        if (c + 88 < dv) output[o + 88] = x11 * inv;
        if (c + 96 < dv) output[o + 96] = x12 * inv;
        if (c + 104 < dv) output[o + 104] = x13 * inv;
        if (c + 112 < dv) output[o + 112] = x14 * inv;
        if (c + 120 < dv) output[o + 120] = x15 * inv;
        if (c == 0 && p.HasLogSumExp != 0)
            logSumExp[bh * p.SeqQ + q0 + r] = l > 0f ? m + XMath.Log(l) : float.NegativeInfinity;
    }
}
