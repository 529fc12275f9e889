using ILGPU;

namespace Managed.Kernels.Recurrent;

/// <summary>The sizes of one Titans memory launch.</summary>
internal readonly struct TitansParams(TitansShape shape, int chunk, bool readState)
{
    public readonly int Items = shape.Batch * shape.Heads, Length = shape.Length,
        KeyDim = shape.KeyDim, ValueDim = shape.ValueDim, Chunk = chunk,
        ReadState = readState ? 1 : 0;
}

/// <summary>
/// Titans' linear memory, chunked: one thread per (batch, head, memory row i). Row i of W and
/// S depends only on component i of the errors, so the rows are independent. Per chunk the
/// thread first writes e_r = W_0[i] . k_r - v_r[i] of every token r of the chunk (W_0 the row
/// at the chunk's start) into the output rows it owns, then walks the chunk:
/// S[i] = eta_t S[i] - 2 theta_t e_t k_t, W[i] = (1 - alpha_t) W[i] + S[i], y_t[i] = W[i] . q_t,
/// overwriting e_t. The rows live in <c>state</c> ((batch, heads, 2, valueDim, keyDim): W then
/// S), copied from <c>initial</c> (or zeroed) first; initial may be the same view.
/// </summary>
internal static class TitansMemoryKernel
{
    /// <summary>Grid: ceil(batch heads valueDim / threads) groups.</summary>
    public static void Run(ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> theta, ArrayView<float> eta,
        ArrayView<float> alpha, ArrayView<float> initial, ArrayView<float> state,
        ArrayView<float> output, TitansParams p)
    {
        int item = Grid.GlobalIndex.X;
        if (item >= p.Items * p.ValueDim) return;
        int bh = item / p.ValueDim, i = item % p.ValueDim;
        int n = p.Length, dk = p.KeyDim, dv = p.ValueDim;
        long plane = (long)dv * dk;
        long w0 = bh * 2 * plane + (long)i * dk, s0 = w0 + plane;
        for (int x = 0; x < dk; x++)
        {
            state[w0 + x] = p.ReadState != 0 ? initial[w0 + x] : 0f;
            state[s0 + x] = p.ReadState != 0 ? initial[s0 + x] : 0f;
        }
        long kBase = (long)bh * n * dk, vBase = (long)bh * n * dv, gBase = (long)bh * n;
        for (int c0 = 0; c0 < n; c0 += p.Chunk)
        {
            int c1 = XMathMin(n, c0 + p.Chunk);
            for (int r = c0; r < c1; r++)
            {
                float e = 0f;
                long kRow = kBase + (long)r * dk;
                for (int x = 0; x < dk; x++) e += state[w0 + x] * key[kRow + x];
                output[vBase + (long)r * dv + i] = e - value[vBase + (long)r * dv + i];
            }
            for (int t = c0; t < c1; t++)
            {
                long kRow = kBase + (long)t * dk, o = vBase + (long)t * dv + i;
                float decay = eta[gBase + t], keep = 1f - alpha[gBase + t];
                float g = 2f * theta[gBase + t] * output[o], y = 0f;
                for (int x = 0; x < dk; x++)
                {
                    float sx = decay * state[s0 + x] - g * key[kRow + x];
                    float wx = keep * state[w0 + x] + sx;
                    state[s0 + x] = sx;
                    state[w0 + x] = wx;
                    y += wx * query[kRow + x];
                }
                output[o] = y;
            }
        }
    }

    private static int XMathMin(int a, int b) => a < b ? a : b;
}
