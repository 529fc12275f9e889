using Managed.Kernels.Recurrent;

namespace Managed.Kernels.Reference;

/// <summary>
/// Titans' linear memory in double precision (Behrouz et al., "Titans: Learning to Memorize
/// at Test Time", eq. 12-15 and section 3.2), written from the paper with whole matrices and
/// sharing no code with <see cref="TitansMemory"/>: the gradient matrix
/// G = 2 (W' k - v) k^T is formed explicitly and S, W updated as matrices.
/// </summary>
public static class ReferenceTitans
{
    /// <summary>The chunk-b definition: per chunk, W' = the memory at its start; per token
    /// S = eta S - theta G(W'), W = (1 - alpha) W + S, y = W q. Output (batch, heads, length,
    /// valueDim); <paramref name="finalState"/> (if not null) gets (batch, heads, 2, valueDim,
    /// keyDim). <paramref name="initialState"/> empty: zeros.</summary>
    public static double[] LinearMemoryChunked(TitansShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, ReadOnlySpan<float> theta,
        ReadOnlySpan<float> eta, ReadOnlySpan<float> alpha, int chunkSize,
        ReadOnlySpan<float> initialState = default, double[]? finalState = null)
    {
        int n = shape.Length, dk = shape.KeyDim, dv = shape.ValueDim;
        var y = new double[shape.ValueLength];
        var w = new double[dv, dk];
        var s = new double[dv, dk];
        var start = new double[dv, dk];
        var grad = new double[dv, dk];
        for (int bh = 0; bh < shape.Batch * shape.Heads; bh++)
        {
            Load(initialState, bh, dv, dk, w, s);
            for (int t = 0; t < n; t++)
            {
                if (t % chunkSize == 0) Array.Copy(w, start, w.Length);
                long kt = ((long)bh * n + t) * dk, vt = ((long)bh * n + t) * dv,
                    g = (long)bh * n + t;
                Gradient(start, key.Slice((int)kt, dk), value.Slice((int)vt, dv), grad);
                Step(w, s, grad, theta[(int)g], eta[(int)g], alpha[(int)g]);
                Read(w, query.Slice((int)kt, dk), y.AsSpan((int)vt, dv));
            }
            Store(finalState, bh, dv, dk, w, s);
        }
        return y;
    }

    /// <summary>The token-by-token recurrence of eq. 13-15: the gradient at W_(t-1), then
    /// S_t, W_t, y_t = W_t q_t.</summary>
    public static double[] LinearMemoryRecurrent(TitansShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, ReadOnlySpan<float> theta,
        ReadOnlySpan<float> eta, ReadOnlySpan<float> alpha)
    {
        int n = shape.Length, dk = shape.KeyDim, dv = shape.ValueDim;
        var y = new double[shape.ValueLength];
        var w = new double[dv, dk];
        var s = new double[dv, dk];
        var grad = new double[dv, dk];
        for (int bh = 0; bh < shape.Batch * shape.Heads; bh++)
        {
            Array.Clear(w);
            Array.Clear(s);
            for (int t = 0; t < n; t++)
            {
                long kt = ((long)bh * n + t) * dk, vt = ((long)bh * n + t) * dv,
                    g = (long)bh * n + t;
                Gradient(w, key.Slice((int)kt, dk), value.Slice((int)vt, dv), grad);
                Step(w, s, grad, theta[(int)g], eta[(int)g], alpha[(int)g]);
                Read(w, query.Slice((int)kt, dk), y.AsSpan((int)vt, dv));
            }
        }
        return y;
    }

    /// <summary>The 2-layer MLP memory M(x) = W2 SiLU(W1 x) of <see cref="TitansMlpMemory"/>
    /// with chunks of <paramref name="chunkSize"/> (1: token by token): per token the
    /// gradients of ||M'(k) - v||^2 at the chunk's start memory M' by the chain rule, as
    /// matrices, then S = eta S - theta G, W = (1 - alpha) W + S per layer, y = M(q). State
    /// layout as <see cref="TitansMlpShape"/>; <paramref name="initialState"/> required.
    /// </summary>
    public static double[] MlpMemoryChunked(TitansMlpShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, ReadOnlySpan<float> theta,
        ReadOnlySpan<float> eta, ReadOnlySpan<float> alpha, int chunkSize,
        ReadOnlySpan<float> initialState, double[]? finalState = null)
    {
        int n = shape.Length, dk = shape.KeyDim, dh = shape.HiddenDim, dv = shape.ValueDim;
        var y = new double[shape.ValueLength];
        double[,] w1 = new double[dh, dk], s1 = new double[dh, dk], g1 = new double[dh, dk],
            w2 = new double[dv, dh], s2 = new double[dv, dh], g2 = new double[dv, dh],
            w1Start = new double[dh, dk], w2Start = new double[dv, dh];
        for (int bh = 0; bh < shape.Batch * shape.Heads; bh++)
        {
            int at = (int)(bh * shape.StateStride);
            Fill(initialState, ref at, w1);
            Fill(initialState, ref at, s1);
            Fill(initialState, ref at, w2);
            Fill(initialState, ref at, s2);
            for (int t = 0; t < n; t++)
            {
                if (t % chunkSize == 0)
                {
                    Array.Copy(w1, w1Start, w1.Length);
                    Array.Copy(w2, w2Start, w2.Length);
                }
                int kt = (bh * n + t) * dk, vt = (bh * n + t) * dv, g = bh * n + t;
                var k = key.Slice(kt, dk);
                // Forward at the start memory: h = W1' k, a = SiLU(h), e = W2' a - v.
                var h = new double[dh];
                var a = new double[dh];
                for (int j = 0; j < dh; j++)
                {
                    for (int x = 0; x < dk; x++) h[j] += w1Start[j, x] * k[x];
                    a[j] = h[j] / (1 + Math.Exp(-h[j]));
                }
                var e = new double[dv];
                for (int i = 0; i < dv; i++)
                {
                    e[i] = -value[vt + i];
                    for (int j = 0; j < dh; j++) e[i] += w2Start[i, j] * a[j];
                }
                // dL/dW2 = 2 e a^T; dL/dW1 = 2 ((W2'^T e) (.) SiLU'(h)) k^T.
                for (int i = 0; i < dv; i++)
                    for (int j = 0; j < dh; j++) g2[i, j] = 2 * e[i] * a[j];
                for (int j = 0; j < dh; j++)
                {
                    double back = 0;
                    for (int i = 0; i < dv; i++) back += w2Start[i, j] * e[i];
                    double sg = 1 / (1 + Math.Exp(-h[j]));
                    double dsilu = sg * (1 + h[j] * (1 - sg));
                    for (int x = 0; x < dk; x++) g1[j, x] = 2 * back * dsilu * k[x];
                }
                Step(w1, s1, g1, theta[g], eta[g], alpha[g]);
                Step(w2, s2, g2, theta[g], eta[g], alpha[g]);
                var q = query.Slice(kt, dk);
                var hq = new double[dh];
                for (int j = 0; j < dh; j++)
                {
                    double sum = 0;
                    for (int x = 0; x < dk; x++) sum += w1[j, x] * q[x];
                    hq[j] = sum / (1 + Math.Exp(-sum));
                }
                for (int i = 0; i < dv; i++)
                {
                    double sum = 0;
                    for (int j = 0; j < dh; j++) sum += w2[i, j] * hq[j];
                    y[vt + i] = sum;
                }
            }
            if (finalState is null) continue;
            at = (int)(bh * shape.StateStride);
            foreach (var m in new[] { w1, s1, w2, s2 })
                foreach (double x in m) finalState[at++] = x;
        }
        return y;
    }

    private static void Fill(ReadOnlySpan<float> state, ref int at, double[,] m)
    {
        for (int i = 0; i < m.GetLength(0); i++)
            for (int x = 0; x < m.GetLength(1); x++) m[i, x] = state[at++];
    }

    /// <summary>MAG of <see cref="TitansGatedAttention"/>: naive softmax attention of every
    /// query t over the keys s &lt;= t with s &lt; Np or t - s &lt; window, scale 1/sqrt(headDim),
    /// times sigmoid of the linear memory's reads (chunked as given, from zeros).</summary>
    public static double[] Mag(TitansMagShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, ReadOnlySpan<float> memoryQuery,
        ReadOnlySpan<float> memoryKey, ReadOnlySpan<float> memoryValue,
        ReadOnlySpan<float> theta, ReadOnlySpan<float> eta, ReadOnlySpan<float> alpha,
        int memoryChunk)
    {
        var m = LinearMemoryChunked(shape.Memory, memoryQuery, memoryKey, memoryValue, theta,
            eta, alpha, memoryChunk);
        int n = shape.Length, d = shape.HeadDim, dv = shape.ValueDim;
        double scale = 1 / Math.Sqrt(d);
        var o = new double[m.Length];
        var logits = new double[n];
        for (int bh = 0; bh < shape.Batch * shape.Heads; bh++)
            for (int t = 0; t < n; t++)
            {
                double max = double.NegativeInfinity;
                for (int s = 0; s <= t; s++)
                {
                    logits[s] = double.NegativeInfinity;
                    if (s >= shape.PersistentTokens && t - s >= shape.Window) continue;
                    double dot = 0;
                    for (int x = 0; x < d; x++)
                        dot += (double)query[(bh * n + t) * d + x] * key[(bh * n + s) * d + x];
                    logits[s] = dot * scale;
                    max = Math.Max(max, logits[s]);
                }
                double sum = 0;
                for (int s = 0; s <= t; s++) sum += Math.Exp(logits[s] - max);
                for (int c = 0; c < dv; c++)
                {
                    double acc = 0;
                    for (int s = 0; s <= t; s++)
                        acc += Math.Exp(logits[s] - max) * value[(bh * n + s) * dv + c];
                    int at = (bh * n + t) * dv + c;
                    o[at] = acc / sum / (1 + Math.Exp(-m[at]));
                }
            }
        return o;
    }

    /// <summary>G = d/dW ||W k - v||^2 = 2 (W k - v) k^T.</summary>
    private static void Gradient(double[,] w, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        double[,] grad)
    {
        int dv = w.GetLength(0), dk = w.GetLength(1);
        for (int i = 0; i < dv; i++)
        {
            double e = -v[i];
            for (int x = 0; x < dk; x++) e += w[i, x] * k[x];
            for (int x = 0; x < dk; x++) grad[i, x] = 2 * e * k[x];
        }
    }

    private static void Step(double[,] w, double[,] s, double[,] grad, double theta,
        double eta, double alpha)
    {
        for (int i = 0; i < w.GetLength(0); i++)
            for (int x = 0; x < w.GetLength(1); x++)
            {
                s[i, x] = eta * s[i, x] - theta * grad[i, x];
                w[i, x] = (1 - alpha) * w[i, x] + s[i, x];
            }
    }

    private static void Read(double[,] w, ReadOnlySpan<float> q, Span<double> y)
    {
        for (int i = 0; i < w.GetLength(0); i++)
        {
            double sum = 0;
            for (int x = 0; x < w.GetLength(1); x++) sum += w[i, x] * q[x];
            y[i] = sum;
        }
    }

    private static void Load(ReadOnlySpan<float> state, int bh, int dv, int dk, double[,] w,
        double[,] s)
    {
        Array.Clear(w);
        Array.Clear(s);
        if (state.IsEmpty) return;
        long plane = (long)dv * dk, at = bh * 2 * plane;
        for (int i = 0; i < dv; i++)
            for (int x = 0; x < dk; x++)
            {
                w[i, x] = state[(int)(at + i * dk + x)];
                s[i, x] = state[(int)(at + plane + i * dk + x)];
            }
    }

    private static void Store(double[]? state, int bh, int dv, int dk, double[,] w,
        double[,] s)
    {
        if (state is null) return;
        long plane = (long)dv * dk, at = bh * 2 * plane;
        for (int i = 0; i < dv; i++)
            for (int x = 0; x < dk; x++)
            {
                state[at + i * dk + x] = w[i, x];
                state[at + plane + i * dk + x] = s[i, x];
            }
    }
}
