using ILGPU;
using ILGPU.Algorithms;

namespace Managed.Kernels.Recurrent;

/// <summary>The sizes of one Titans MLP-memory launch.</summary>
internal readonly struct TitansMlpParams(TitansMlpShape shape, int chunk)
{
    public readonly int Heads = shape.Batch * shape.Heads, Length = shape.Length,
        KeyDim = shape.KeyDim, HiddenDim = shape.HiddenDim, ValueDim = shape.ValueDim,
        Chunk = chunk;
}

/// <summary>
/// Titans' 2-layer MLP memory, chunked: one group per (batch, head); threads stride over the
/// rows of W1 (hidden units j) and of W2 (outputs i). Per chunk, at the chunk's start memory:
/// h_r = W1 k_r and a_r = SiLU(h_r) (rows j), e_r = W2 a_r - v_r (rows i, into the output),
/// delta_r = (W2^T e_r) (.) SiLU'(h_r) (rows j, over h_r); then per token the momentum and
/// decay updates of both layers' rows and the read y_t = W2 SiLU(W1 q_t). Barriers separate
/// the phases; every loop bound is group-uniform.
/// </summary>
internal static class TitansMlpMemoryKernel
{
    /// <summary>Grid: batch heads groups. <c>scratch</c> (batch, heads, 2 length hiddenDim +
    /// hiddenDim): a, then h / delta, then SiLU(W1 q).</summary>
    public static void Run(ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> theta, ArrayView<float> eta, ArrayView<float> alpha,
        ArrayView<float> initial, ArrayView<float> state, ArrayView<float> scratch,
        ArrayView<float> output, TitansMlpParams p)
    {
        int bh = Grid.IdxX, tid = Group.IdxX, nt = Group.DimX;
        int n = p.Length, dk = p.KeyDim, dh = p.HiddenDim, dv = p.ValueDim;
        long l1 = (long)dh * dk, l2 = (long)dv * dh, stride = 2 * l1 + 2 * l2;
        long w1 = bh * stride, s1 = w1 + l1, w2 = s1 + l1, s2 = w2 + l2;
        long aBase = (long)bh * (2L * n * dh + dh), dBase = aBase + (long)n * dh,
            hq = dBase + (long)n * dh;
        long kBase = (long)bh * n * dk, vBase = (long)bh * n * dv, gBase = (long)bh * n;
        for (long x = tid; x < stride; x += nt) state[w1 + x] = initial[w1 + x];
        Group.Barrier();
        for (int c0 = 0; c0 < n; c0 += p.Chunk)
        {
            int c1 = c0 + p.Chunk < n ? c0 + p.Chunk : n;
            for (int j = tid; j < dh; j += nt)
                for (int r = c0; r < c1; r++)
                {
                    float h = 0f;
                    for (int x = 0; x < dk; x++)
                        h += state[w1 + (long)j * dk + x] * key[kBase + (long)r * dk + x];
                    scratch[dBase + (long)r * dh + j] = h;
                    scratch[aBase + (long)r * dh + j] = Silu(h);
                }
            Group.Barrier();
            for (int i = tid; i < dv; i += nt)
                for (int r = c0; r < c1; r++)
                {
                    float y = 0f;
                    for (int j = 0; j < dh; j++)
                        y += state[w2 + (long)i * dh + j] * scratch[aBase + (long)r * dh + j];
                    output[vBase + (long)r * dv + i] = y - value[vBase + (long)r * dv + i];
                }
            Group.Barrier();
            for (int j = tid; j < dh; j += nt)
                for (int r = c0; r < c1; r++)
                {
                    float back = 0f;
                    for (int i = 0; i < dv; i++)
                        back += state[w2 + (long)i * dh + j] * output[vBase + (long)r * dv + i];
                    long at = dBase + (long)r * dh + j;
                    scratch[at] = back * SiluDerivative(scratch[at]);
                }
            Group.Barrier();
            for (int t = c0; t < c1; t++)
            {
                float decay = eta[gBase + t], keep = 1f - alpha[gBase + t],
                    lr = 2f * theta[gBase + t];
                long kRow = kBase + (long)t * dk;
                for (int j = tid; j < dh; j += nt)
                {
                    float g = lr * scratch[dBase + (long)t * dh + j];
                    for (int x = 0; x < dk; x++)
                    {
                        long at = (long)j * dk + x;
                        float sx = decay * state[s1 + at] - g * key[kRow + x];
                        state[s1 + at] = sx;
                        state[w1 + at] = keep * state[w1 + at] + sx;
                    }
                }
                for (int i = tid; i < dv; i += nt)
                {
                    float g = lr * output[vBase + (long)t * dv + i];
                    for (int j = 0; j < dh; j++)
                    {
                        long at = (long)i * dh + j;
                        float sx = decay * state[s2 + at] - g * scratch[aBase + (long)t * dh + j];
                        state[s2 + at] = sx;
                        state[w2 + at] = keep * state[w2 + at] + sx;
                    }
                }
                Group.Barrier();
                for (int j = tid; j < dh; j += nt)
                {
                    float h = 0f;
                    for (int x = 0; x < dk; x++)
                        h += state[w1 + (long)j * dk + x] * query[kRow + x];
                    scratch[hq + j] = Silu(h);
                }
                Group.Barrier();
                for (int i = tid; i < dv; i += nt)
                {
                    float y = 0f;
                    for (int j = 0; j < dh; j++)
                        y += state[w2 + (long)i * dh + j] * scratch[hq + j];
                    output[vBase + (long)t * dv + i] = y;
                }
                Group.Barrier();
            }
        }
    }

    /// <summary>SiLU(h) = h sigmoid(h).</summary>
    public static float Silu(float h) => h / (1f + XMath.Exp(-h));

    /// <summary>SiLU'(h) = sigmoid(h) (1 + h (1 - sigmoid(h))).</summary>
    public static float SiluDerivative(float h)
    {
        float s = 1f / (1f + XMath.Exp(-h));
        return s * (1f + h * (1f - s));
    }
}
