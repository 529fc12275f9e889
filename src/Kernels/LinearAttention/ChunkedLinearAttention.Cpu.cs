using System.Buffers;
using System.Numerics.Tensors;

namespace Managed.Kernels.LinearAttention;

// The host path: one task per (sequence, KV head) walks the chunks in order; SIMD over the
// value dim (rows of S, rows of V) and the features (dot products).
public static partial class ChunkedLinearAttention
{
    private static unsafe void ForwardHost(ChunkedPlan plan, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, ReadOnlySpan<float> decay,
        Span<float> output, LinearAttentionState? state)
    {
        var shape = plan.Shape;
        int items = shape.Batch * shape.KvHeads;
        fixed (float* q = query, k = key, v = value, o = output, lam = decay)
        fixed (float* s = state?.HostS, z = state?.HostZ)
        {
            var job = new HostJob(plan, q, k, v, o, decay.IsEmpty ? null : lam, s, z);
            int threads = Math.Min(plan.Threads, items);
            if (threads <= 1)
                for (int i = 0; i < items; i++) job.Item(i);
            else
                Parallel.For(0, items, new ParallelOptions { MaxDegreeOfParallelism = threads },
                    job.Item);
        }
    }

    /// <summary>The inputs of one host call (pinned for its duration).</summary>
    private sealed unsafe class HostJob(ChunkedPlan plan, float* q, float* k, float* v,
        float* o, float* lambda, float* stateS, float* stateZ)
    {
        private readonly LinearAttentionShape _shape = plan.Shape;

        /// <summary>Sequence and KV head <paramref name="item"/>.</summary>
        public void Item(int item)
        {
            int f = _shape.Features, dv = _shape.ValueDim, n = _shape.Length;
            int c = plan.Causal ? Math.Min(plan.Chunk, n) : 0;
            int stateLength = f * dv;
            // Scratch: S and z when the call has no state, the decay powers, an output row.
            int scratch = (stateS is null ? stateLength + f : 0) + c + 1 + dv;
            float[] rented = ArrayPool<float>.Shared.Rent(scratch);
            try
            {
                fixed (float* buffer = rented)
                {
                    float* sS = stateS is null ? buffer : stateS + (long)item * stateLength;
                    float* sZ = stateS is null ? buffer + stateLength : stateZ + (long)item * f;
                    float* pw = buffer + (stateS is null ? stateLength + f : 0);
                    float* row = pw + c + 1;
                    if (stateS is null)
                    {
                        new Span<float>(sS, stateLength).Clear();
                        new Span<float>(sZ, f).Clear();
                    }
                    float lam = lambda is null ? 1f : lambda[item % _shape.KvHeads];
                    for (int j = 0; j <= c; j++) pw[j] = Power(lam, j);
                    if (plan.Causal) Causal(item, sS, sZ, pw, row);
                    else Global(item, sS, sZ, row);
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(rented);
            }
        }

        private void Causal(int item, float* sS, float* sZ, float* pw, float* row)
        {
            int f = _shape.Features, dv = _shape.ValueDim, n = _shape.Length,
                g = _shape.GroupSize, c = Math.Min(plan.Chunk, n);
            int b = item / _shape.KvHeads, kvh = item % _shape.KvHeads;
            float* kBase = k + (long)item * n * f, vBase = v + (long)item * n * dv;
            var z = new ReadOnlySpan<float>(sZ, f);
            var acc = new Span<float>(row, dv);
            for (int t0 = 0; t0 < n; t0 += c)
            {
                int len = Math.Min(c, n - t0);
                for (int hh = 0; hh < g; hh++)
                {
                    long qh = (long)b * _shape.Heads + kvh * g + hh;
                    for (int i = 0; i < len; i++)
                    {
                        int t = t0 + i;
                        float* qt = q + (qh * n + t) * f;
                        var qs = new ReadOnlySpan<float>(qt, f);
                        // The state before the chunk, decayed to t: lambda^(i+1) phi(q_t) S.
                        acc.Clear();
                        for (int j = 0; j < f; j++)
                            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(sS + (long)j * dv, dv),
                                qt[j], acc, acc);
                        float w = pw[i + 1];
                        TensorPrimitives.Multiply(acc, w, acc);
                        float den = plan.Normalize ? w * TensorPrimitives.Dot(qs, z) : 0f;
                        // The chunk's own keys up to t, the quadratic form with the causal mask.
                        for (int s = 0; s <= i; s++)
                        {
                            float a = pw[i - s] * TensorPrimitives.Dot(qs,
                                new ReadOnlySpan<float>(kBase + (long)(t0 + s) * f, f));
                            TensorPrimitives.MultiplyAdd(
                                new ReadOnlySpan<float>(vBase + (long)(t0 + s) * dv, dv), a, acc, acc);
                            den += a;
                        }
                        Store(acc, den, qh, t);
                    }
                }
                // S <- lambda^len S + sum_s lambda^(len-1-s) phi(k_s) v_s^T; z likewise.
                float decayChunk = pw[len];
                if (decayChunk != 1f)
                {
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(sS, f * dv), decayChunk,
                        new Span<float>(sS, f * dv));
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(sZ, f), decayChunk,
                        new Span<float>(sZ, f));
                }
                for (int s = 0; s < len; s++)
                {
                    float* ks = kBase + (long)(t0 + s) * f;
                    var vs = new ReadOnlySpan<float>(vBase + (long)(t0 + s) * dv, dv);
                    float w = pw[len - 1 - s];
                    for (int j = 0; j < f; j++)
                    {
                        var sRow = new Span<float>(sS + (long)j * dv, dv);
                        TensorPrimitives.MultiplyAdd(vs, w * ks[j], sRow, sRow);
                    }
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(ks, f), w,
                        new ReadOnlySpan<float>(sZ, f), new Span<float>(sZ, f));
                }
            }
        }

        private void Global(int item, float* sS, float* sZ, float* row)
        {
            int f = _shape.Features, dv = _shape.ValueDim, n = _shape.Length, g = _shape.GroupSize;
            int b = item / _shape.KvHeads, kvh = item % _shape.KvHeads;
            float* kBase = k + (long)item * n * f, vBase = v + (long)item * n * dv;
            for (int s = 0; s < n; s++)
            {
                float* ks = kBase + (long)s * f;
                var vs = new ReadOnlySpan<float>(vBase + (long)s * dv, dv);
                for (int j = 0; j < f; j++)
                {
                    var sRow = new Span<float>(sS + (long)j * dv, dv);
                    TensorPrimitives.MultiplyAdd(vs, ks[j], sRow, sRow);
                }
                TensorPrimitives.Add(new ReadOnlySpan<float>(sZ, f), new ReadOnlySpan<float>(ks, f),
                    new Span<float>(sZ, f));
            }
            var z = new ReadOnlySpan<float>(sZ, f);
            var acc = new Span<float>(row, dv);
            for (int hh = 0; hh < g; hh++)
            {
                long qh = (long)b * _shape.Heads + kvh * g + hh;
                for (int t = 0; t < n; t++)
                {
                    float* qt = q + (qh * n + t) * f;
                    acc.Clear();
                    for (int j = 0; j < f; j++)
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(sS + (long)j * dv, dv),
                            qt[j], acc, acc);
                    float den = plan.Normalize
                        ? TensorPrimitives.Dot(new ReadOnlySpan<float>(qt, f), z) : 0f;
                    Store(acc, den, qh, t);
                }
            }
        }

        /// <summary>Writes row t of head qh: o, or o / den when normalized (0 for den 0).
        /// </summary>
        private void Store(ReadOnlySpan<float> row, float den, long qh, int t)
        {
            int dv = _shape.ValueDim;
            var target = new Span<float>(o + (qh * _shape.Length + t) * dv, dv);
            if (!plan.Normalize) row.CopyTo(target);
            else if (den == 0f) target.Clear();
            else TensorPrimitives.Divide(row, den, target);
        }
    }

    /// <summary>lambda^j in float, as the device computes it: exp(j ln lambda) (1 for lambda 1).
    /// </summary>
    internal static float Power(float lambda, int j) =>
        lambda == 1f ? 1f : MathF.Exp(j * MathF.Log(lambda));
}
