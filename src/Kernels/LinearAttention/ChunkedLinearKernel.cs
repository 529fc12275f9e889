using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Managed.Kernels.LinearAttention;

/// <summary>The sizes of one chunked linear-attention launch.</summary>
internal readonly struct ChunkedParams(LinearAttentionShape shape, int chunk, bool causal,
    bool normalize, int columnBlocks)
{
    public readonly int Heads = shape.Heads, KvHeads = shape.KvHeads, Length = shape.Length,
        Features = shape.Features, ValueDim = shape.ValueDim, Chunk = chunk,
        Causal = causal ? 1 : 0, Normalize = normalize ? 1 : 0, ColumnBlocks = columnBlocks;
}

/// <summary>
/// The chunked linear-attention kernel: one group of <see cref="Threads"/> threads per
/// (sequence, KV head, block of 128 value columns). Each thread owns one column of the state S
/// (features x valueDim, in the state buffer: S[:, c] is read and written by that thread only)
/// and the group shares z, the decay powers and the chunk's masked score matrix in shared
/// memory. Per chunk and query head: the group computes A[i, j] = lambda^(i-j) phi(q_i) .
/// phi(k_j) (j &lt;= i), then each thread its column of o_i = lambda^(i+1) phi(q_i) S + sum_j
/// A[i, j] v_j; after the chunk, S and z absorb its keys. Non-causal calls accumulate S over
/// all keys first, then read it out.
/// </summary>
internal static class ChunkedLinearKernel
{
    public const int Threads = 128;
    private const int MaxChunk = ChunkedLinearAttention.DeviceMaxChunk;
    private const int MaxFeatures = ChunkedLinearAttention.DeviceMaxFeatures;

    public static void Run(ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> logDecay, ArrayView<float> stateS, ArrayView<float> stateZ,
        ArrayView<float> output, ChunkedParams p)
    {
        var scores = SharedMemory.Allocate<float>(MaxChunk * MaxChunk);
        var z = SharedMemory.Allocate<float>(MaxFeatures);
        var pw = SharedMemory.Allocate<float>(MaxChunk + 1);

        int tid = Group.IdxX, blk = Grid.IdxX;
        int cb = blk % p.ColumnBlocks, item = blk / p.ColumnBlocks;
        int kvh = item % p.KvHeads, b = item / p.KvHeads;
        int f = p.Features, dv = p.ValueDim, n = p.Length, g = p.Heads / p.KvHeads;
        int col = cb * Threads + tid;
        bool owns = col < dv;
        long sBase = (long)item * f * dv + col;
        long kBase = (long)item * n * f, vBase = (long)item * n * dv + col;
        int c = p.Causal != 0 ? XMath.Min(p.Chunk, n) : 0;
        float logLambda = logDecay[kvh];

        for (int j = tid; j < f; j += Threads) z[j] = stateZ[(long)item * f + j];
        for (int j = tid; j <= c; j += Threads) pw[j] = logLambda == 0f ? 1f : XMath.Exp(j * logLambda);
        Group.Barrier();

        if (p.Causal == 0)
        {
            // One global state: S and z over every key, then every query reads it.
            for (int s = 0; s < n; s++)
            {
                if (owns)
                {
                    float vs = value[vBase + (long)s * dv];
                    for (int j = 0; j < f; j++)
                        stateS[sBase + (long)j * dv] += key[kBase + (long)s * f + j] * vs;
                }
            }
            for (int j = tid; j < f; j += Threads)
            {
                float acc = z[j];
                for (int s = 0; s < n; s++) acc += key[kBase + (long)s * f + j];
                z[j] = acc;
            }
            Group.Barrier();
            for (int hh = 0; hh < g; hh++)
            {
                long qh = (long)b * p.Heads + kvh * g + hh;
                for (int t = 0; t < n; t++)
                {
                    long qt = (qh * n + t) * f;
                    float o = 0f, den = 0f;
                    for (int j = 0; j < f; j++)
                    {
                        float qj = query[qt + j];
                        if (owns) o += qj * stateS[sBase + (long)j * dv];
                        if (p.Normalize != 0) den += qj * z[j];
                    }
                    if (owns) output[(qh * n + t) * dv + col] = Finish(o, den, p.Normalize);
                }
            }
            return;
        }

        for (int t0 = 0; t0 < n; t0 += c)
        {
            int len = XMath.Min(c, n - t0);
            for (int hh = 0; hh < g; hh++)
            {
                long qh = (long)b * p.Heads + kvh * g + hh;
                // The chunk's masked, decayed scores.
                for (int e = tid; e < len * len; e += Threads)
                {
                    int i = e / len, j = e - i * len;
                    float a = 0f;
                    if (j <= i)
                    {
                        long qi = (qh * n + t0 + i) * f, kj = kBase + (long)(t0 + j) * f;
                        for (int x = 0; x < f; x++) a += query[qi + x] * key[kj + x];
                        a *= pw[i - j];
                    }
                    scores[i * MaxChunk + j] = a;
                }
                Group.Barrier();
                for (int i = 0; i < len; i++)
                {
                    long qi = (qh * n + t0 + i) * f;
                    float o = 0f, den = 0f;
                    for (int j = 0; j < f; j++)
                    {
                        float qj = query[qi + j];
                        if (owns) o += qj * stateS[sBase + (long)j * dv];
                        if (p.Normalize != 0) den += qj * z[j];
                    }
                    float w = pw[i + 1];
                    o *= w;
                    den *= w;
                    for (int j = 0; j <= i; j++)
                    {
                        float a = scores[i * MaxChunk + j];
                        if (owns) o += a * value[vBase + (long)(t0 + j) * dv];
                        den += a;
                    }
                    if (owns) output[(qh * n + t0 + i) * dv + col] = Finish(o, den, p.Normalize);
                }
                Group.Barrier();
            }
            // S <- lambda^len S + sum_j lambda^(len-1-j) phi(k_j) v_j^T; z likewise.
            float decayChunk = pw[len];
            if (owns)
                for (int x = 0; x < f; x++)
                {
                    float acc = stateS[sBase + (long)x * dv] * decayChunk;
                    for (int j = 0; j < len; j++)
                        acc += pw[len - 1 - j] * key[kBase + (long)(t0 + j) * f + x]
                            * value[vBase + (long)(t0 + j) * dv];
                    stateS[sBase + (long)x * dv] = acc;
                }
            for (int x = tid; x < f; x += Threads)
            {
                float acc = z[x] * decayChunk;
                for (int j = 0; j < len; j++)
                    acc += pw[len - 1 - j] * key[kBase + (long)(t0 + j) * f + x];
                z[x] = acc;
            }
            Group.Barrier();
        }
        if (cb == 0)
            for (int j = tid; j < f; j += Threads) stateZ[(long)item * f + j] = z[j];
    }

    private static float Finish(float o, float den, int normalize) =>
        normalize == 0 ? o : den == 0f ? 0f : o / den;
}
