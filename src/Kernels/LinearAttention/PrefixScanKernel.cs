using ILGPU;
using ILGPU.Algorithms;

namespace Managed.Kernels.LinearAttention;

/// <summary>The sizes of one prefix-scan launch.</summary>
internal readonly struct PrefixScanParams(PrefixScanShape shape, float scale, int segment,
    bool readState)
{
    public readonly int Heads = shape.Heads, KvHeads = shape.KvHeads,
        GroupSize = shape.GroupSize, Length = shape.Length, HeadDim = shape.HeadDim,
        ValueDim = shape.ValueDim, Segment = segment, ReadState = readState ? 1 : 0;
    public readonly float Scale = scale;
}

/// <summary>
/// All prefix outputs of one query per (batch, head) as a parallel scan of the softmax
/// triples (m, l, a): one group per (batch, head); thread t owns keys
/// [t * segment, (t + 1) * segment). It computes its keys' scores once (kept in a scratch of
/// batch x heads x length floats, no N^2 buffer) and its segment's (m, l); then, for each
/// slice of <see cref="Slice"/> value columns, its segment's a, an inclusive log-step
/// (Hillis-Steele) scan of the group's segment totals in shared memory, and a rescan of its
/// segment from the exclusive prefix that writes o_t = a_t / l_t. The slices keep the
/// per-thread state at 3 x 16 floats whatever the value dim. The carried state enters as a
/// prefix of thread 0's segment; the last thread's inclusive total is the state after the
/// call.
/// </summary>
internal static class PrefixScanKernel
{
    /// <summary>Most threads per group (the shared arrays are sized for it).</summary>
    public const int MaxThreads = 128;

    /// <summary>Value columns per pass.</summary>
    public const int Slice = 16;

    /// <summary>Largest head dim: the query lives in shared memory.</summary>
    public const int MaxHeadDim = 256;

    /// <summary>Grid: batch x heads groups of at most <see cref="MaxThreads"/> threads.
    /// <paramref name="initialState"/> is read only when p.ReadState is 1 and may be the same
    /// view as <paramref name="finalState"/>: each group reads its record before its barriers
    /// and writes it after them.</summary>
    public static void Run(ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> scores, ArrayView<float> initialState, ArrayView<float> finalState,
        ArrayView<float> output, PrefixScanParams p)
    {
        var sq = SharedMemory.Allocate<float>(MaxHeadDim);
        var sm = SharedMemory.Allocate<float>(MaxThreads);
        var sl = SharedMemory.Allocate<float>(MaxThreads);
        var sa = SharedMemory.Allocate<float>(MaxThreads * Slice);
        var own = LocalMemory.Allocate<float>(Slice);     // this thread's a
        var other = LocalMemory.Allocate<float>(Slice);   // a neighbour's a, then the prefix
        var carried = LocalMemory.Allocate<float>(Slice); // the carried state's a (thread 0)
        int tid = Group.IdxX, threads = Group.DimX, bh = Grid.IdxX;
        int h = bh % p.Heads, b = bh / p.Heads, kvh = h / p.GroupSize;
        int n = p.Length, d = p.HeadDim, dv = p.ValueDim;
        long item = (long)b * p.KvHeads + kvh;
        long kBase = item * n * d, vBase = item * n * dv, sBase = (long)bh * n,
            oBase = (long)bh * n * dv, stBase = (long)bh * (dv + 2);
        for (int i = tid; i < d; i += threads) sq[i] = query[(long)bh * d + i];
        Group.Barrier();

        int start = XMath.Min(n, tid * p.Segment), end = XMath.Min(n, start + p.Segment);
        bool carry = tid == 0 && p.ReadState != 0;
        float m0 = carry ? initialState[stBase] : float.NegativeInfinity;
        float l0 = carry ? initialState[stBase + 1] : 0f;
        // The segment's scores and (m, l), starting from the carried state on thread 0.
        float segM = m0, segL = l0;
        for (int j = start; j < end; j++)
        {
            long kRow = kBase + (long)j * d;
            float s = 0f;
            for (int x = 0; x < d; x++) s += sq[x] * key[kRow + x];
            s *= p.Scale;
            scores[sBase + j] = s;
            // Online softmax: exp(-inf) = 0 rescales the empty start away.
            if (s > segM)
            {
                segL = segL * XMath.Exp(segM - s) + 1f;
                segM = s;
            }
            else
            {
                segL += XMath.Exp(s - segM);
            }
        }

        float cm = segM, cl = segL;
        // dv and threads are group-uniform, so every thread meets every barrier below.
        for (int c0 = 0; c0 < dv; c0 += Slice)
        {
            int width = XMath.Min(Slice, dv - c0);
            float carriedScale = m0 == segM ? 1f : XMath.Exp(m0 - segM);
            for (int c = 0; c < Slice; c++)
            {
                carried[c] = carry && c < width ? initialState[stBase + 2 + c0 + c] : 0f;
                own[c] = carried[c] * carriedScale;
            }
            for (int j = start; j < end; j++)
            {
                float w = XMath.Exp(scores[sBase + j] - segM);
                long vRow = vBase + (long)j * dv + c0;
                for (int c = 0; c < width; c++) own[c] += w * value[vRow + c];
            }

            // Inclusive scan of the segment totals: read the neighbour, barrier, combine and
            // publish, barrier (the operator is commutative, so the order of the pair is free).
            cm = segM;
            cl = segL;
            Publish(sm, sl, sa, tid, cm, cl, own);
            Group.Barrier();
            for (int offset = 1; offset < threads; offset <<= 1)
            {
                bool take = tid >= offset;
                float pm = float.NegativeInfinity, pl = 0f;
                if (take)
                {
                    pm = sm[tid - offset];
                    pl = sl[tid - offset];
                    for (int c = 0; c < Slice; c++) other[c] = sa[(tid - offset) * Slice + c];
                }
                Group.Barrier();
                if (take)
                {
                    Combine(pm, pl, other, ref cm, ref cl, own);
                    Publish(sm, sl, sa, tid, cm, cl, own);
                }
                Group.Barrier();
            }

            // The exclusive prefix: the carried state for thread 0, else the inclusive total
            // of the thread before.
            float rm = m0, rl = l0;
            if (tid == 0)
            {
                for (int c = 0; c < Slice; c++) other[c] = carried[c];
            }
            else
            {
                rm = sm[tid - 1];
                rl = sl[tid - 1];
                for (int c = 0; c < Slice; c++) other[c] = sa[(tid - 1) * Slice + c];
            }
            if (tid == threads - 1)
                for (int c = 0; c < width; c++) finalState[stBase + 2 + c0 + c] = own[c];
            Group.Barrier(); // the next slice republishes sm, sl and sa

            // Rescan the segment from its prefix; o_t = a_t / l_t.
            for (int j = start; j < end; j++)
            {
                float s = scores[sBase + j];
                long vRow = vBase + (long)j * dv + c0, oRow = oBase + (long)j * dv + c0;
                if (s > rm)
                {
                    float r = XMath.Exp(rm - s);
                    rl = rl * r + 1f;
                    for (int c = 0; c < width; c++) other[c] = other[c] * r + value[vRow + c];
                    rm = s;
                }
                else
                {
                    float w = XMath.Exp(s - rm);
                    rl += w;
                    for (int c = 0; c < width; c++) other[c] += w * value[vRow + c];
                }
                for (int c = 0; c < width; c++) output[oRow + c] = other[c] / rl;
            }
        }
        if (tid == threads - 1)
        {
            finalState[stBase] = cm;
            finalState[stBase + 1] = cl;
        }
    }

    private static void Publish(ArrayView<float> sm, ArrayView<float> sl, ArrayView<float> sa,
        int tid, float m, float l, ArrayView<float> a)
    {
        sm[tid] = m;
        sl[tid] = l;
        for (int c = 0; c < Slice; c++) sa[tid * Slice + c] = a[c];
    }

    /// <summary>(m, l, a) = (pm, pl, pa) + (m, l, a): both rescaled to the larger max; a side
    /// at that max keeps factor 1, so two empty sides (-inf) stay empty instead of NaN.
    /// </summary>
    private static void Combine(float pm, float pl, ArrayView<float> pa, ref float m,
        ref float l, ArrayView<float> a)
    {
        float mx = XMath.Max(pm, m);
        float fp = pm == mx ? 1f : XMath.Exp(pm - mx);
        float fo = m == mx ? 1f : XMath.Exp(m - mx);
        l = pl * fp + l * fo;
        for (int c = 0; c < Slice; c++) a[c] = pa[c] * fp + a[c] * fo;
        m = mx;
    }
}
