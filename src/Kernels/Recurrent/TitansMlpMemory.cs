using System.Buffers;
using System.Numerics.Tensors;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.Recurrent;

/// <summary>
/// The size of one Titans MLP-memory call: q and k (batch, heads, length, keyDim), v and
/// output (batch, heads, length, valueDim), the gates (batch, heads, length), the state
/// (batch, heads, StateStride): per (batch, head) [W1 (hiddenDim, keyDim), S1 (same),
/// W2 (valueDim, hiddenDim), S2 (same)], row-major.
/// </summary>
public readonly record struct TitansMlpShape(int Batch, int Heads, int Length, int KeyDim,
    int HiddenDim, int ValueDim)
{
    /// <summary>batch * heads * length * keyDim</summary>
    public long KeyLength => (long)Batch * Heads * Length * KeyDim;
    /// <summary>batch * heads * length * valueDim</summary>
    public long ValueLength => (long)Batch * Heads * Length * ValueDim;
    /// <summary>batch * heads * length</summary>
    public long GateLength => (long)Batch * Heads * Length;
    /// <summary>2 hiddenDim keyDim + 2 valueDim hiddenDim: one (batch, head)'s state.</summary>
    public long StateStride => 2L * HiddenDim * KeyDim + 2L * ValueDim * HiddenDim;
    /// <summary>batch * heads * StateStride</summary>
    public long StateLength => (long)Batch * Heads * StateStride;

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not
    /// valid.</summary>
    public void Validate(string paramName = "shape")
    {
        TitansShape.Positive(Batch, nameof(Batch), paramName);
        TitansShape.Positive(Heads, nameof(Heads), paramName);
        TitansShape.Positive(Length, nameof(Length), paramName);
        TitansShape.Positive(KeyDim, nameof(KeyDim), paramName);
        TitansShape.Positive(HiddenDim, nameof(HiddenDim), paramName);
        TitansShape.Positive(ValueDim, nameof(ValueDim), paramName);
        if ((long)Batch * Heads > int.MaxValue || StateLength > Array.MaxLength
            || GateLength * (2L * HiddenDim + 1) > Array.MaxLength)
            throw new ArgumentException($"{this}: the state or scratch does not fit an array.",
                paramName);
    }


    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} H={Heads} N={Length} Dk={KeyDim} Dh={HiddenDim} Dv={ValueDim}";
}

/// <summary>
/// Titans' neural memory with the paper's deep memory, L_M = 2 (Behrouz et al., section 3.1
/// and 5.5): M(x) = W2 SiLU(W1 x) per (batch, head), updated while reading exactly as the
/// linear memory of <see cref="TitansMemory"/> but for both layers: with
/// l(M; x_t) = ||M(k_t) - v_t||^2, e = M'(k_t) - v_t, a = SiLU(W1' k_t),
/// grad_W2 = 2 e a^T, grad_W1 = 2 ((W2'^T e) (.) SiLU'(W1' k_t)) k_t^T;
/// S_t = eta_t S_(t-1) - theta_t grad, W_t = (1 - alpha_t) W_(t-1) + S_t for each layer;
/// y_t = M_t(q_t). M' is the memory at the start of the token's chunk (chunk 1: the
/// token-by-token recurrence). SiLU is our choice of the inner activation (the paper does
/// not fix one). The initial memory (the paper's learned M_0) is required: from W = 0 every
/// gradient vanishes.
/// <para>The host runs (batch, head) pairs in parallel; an ILGPU device one group per
/// (batch, head) (<see cref="TitansMlpMemoryKernel"/>).</para>
/// </summary>
public static class TitansMlpMemory
{
    // theta, eta and alpha share one slot, so the kernel's scratch has its own and a warm
    // call allocates nothing.
    private const int SlotQuery = 0, SlotKey = 1, SlotValue = 2, SlotGates = 3, SlotScratch = 4,
        SlotState = 5, SlotOutput = 6;

    internal static readonly MethodInfo KernelMethod =
        typeof(TitansMlpMemoryKernel).GetMethod(nameof(TitansMlpMemoryKernel.Run))!;

    /// <summary>
    /// y_t = W2_t SiLU(W1_t q_t) for every token, on host spans, on <paramref name="device"/>,
    /// with chunks of <paramref name="chunkSize"/> tokens. <paramref name="initialState"/>
    /// (batch, heads, StateStride) is required; <paramref name="finalState"/> is empty (not
    /// wanted), the same size apart from it, or the very span of initialState.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and its dimensions), a gate or the state is not finite or alpha is
    /// outside [0, 1], the chunk size is not positive, or an output overlaps an input; thrown
    /// before anything is written.</exception>
    public static void Forward(ComputeDevice device, TitansMlpShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> theta, ReadOnlySpan<float> eta, ReadOnlySpan<float> alpha,
        Span<float> output, int chunkSize, ReadOnlySpan<float> initialState,
        Span<float> finalState = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        shape.Validate(nameof(shape));
        var s = shape;
        string bhn = $"batch {s.Batch} x heads {s.Heads} x length {s.Length}";
        MultiDimensionalEma.CheckLength(query.Length, s.KeyLength, "query",
            $"{bhn} x keyDim {s.KeyDim}");
        MultiDimensionalEma.CheckLength(key.Length, s.KeyLength, "key",
            $"{bhn} x keyDim {s.KeyDim}");
        MultiDimensionalEma.CheckLength(value.Length, s.ValueLength, "value",
            $"{bhn} x valueDim {s.ValueDim}");
        MultiDimensionalEma.CheckLength(theta.Length, s.GateLength, "theta", bhn);
        MultiDimensionalEma.CheckLength(eta.Length, s.GateLength, "eta", bhn);
        MultiDimensionalEma.CheckLength(alpha.Length, s.GateLength, "alpha", bhn);
        MultiDimensionalEma.CheckLength(output.Length, s.ValueLength, "output",
            $"{bhn} x valueDim {s.ValueDim}");
        string state = $"batch {s.Batch} x heads {s.Heads} x (2 hiddenDim {s.HiddenDim} x "
            + $"keyDim {s.KeyDim} + 2 valueDim {s.ValueDim} x hiddenDim {s.HiddenDim})";
        MultiDimensionalEma.CheckLength(initialState.Length, s.StateLength, "initialState",
            state);
        if (!finalState.IsEmpty)
            MultiDimensionalEma.CheckLength(finalState.Length, s.StateLength, "finalState",
                state + " (or empty)");
        if (chunkSize < 1)
            throw new ArgumentException($"chunkSize must be positive, got {chunkSize}.",
                nameof(chunkSize));
        TitansMemory.CheckGates(theta, eta, alpha);
        MultiDimensionalEma.CheckFinite(initialState, "initialState");
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(theta) || output.Overlaps(eta) || output.Overlaps(alpha)
            || output.Overlaps(initialState) || output.Overlaps(finalState))
            throw new ArgumentException(
                "output must not overlap an input or a state.", nameof(output));
        ReadOnlySpan<float> final = finalState;
        if (final.Overlaps(query) || final.Overlaps(key) || final.Overlaps(value)
            || final.Overlaps(theta) || final.Overlaps(eta) || final.Overlaps(alpha)
            || final.Overlaps(initialState, out int offset) && offset != 0)
            throw new ArgumentException("finalState must not overlap an input, and is either "
                + "initialState itself or apart from it.", nameof(finalState));
        int chunk = Math.Min(chunkSize, s.Length);
        long scratchLength = (long)s.Batch * s.Heads * (2L * s.Length * s.HiddenDim
            + s.HiddenDim);
        if (device.IsHost)
        {
            ForwardHost(s, chunk, query, key, value, theta, eta, alpha, output, initialState,
                finalState);
            return;
        }
        var ws = device.Workspace;
        var dq = ws.Get<float>(SlotQuery, query.Length);
        var dk = ws.Get<float>(SlotKey, key.Length);
        var dvv = ws.Get<float>(SlotValue, value.Length);
        var gates = ws.Get<float>(SlotGates, (long)theta.Length + eta.Length + alpha.Length);
        var dth = gates.SubView(0, theta.Length);
        var det = gates.SubView(theta.Length, eta.Length);
        var dal = gates.SubView(theta.Length + eta.Length, alpha.Length);
        var dst = ws.Get<float>(SlotState, s.StateLength);
        var dout = ws.Get<float>(SlotOutput, output.Length);
        dq.CopyFromCPU(query);
        dk.CopyFromCPU(key);
        dvv.CopyFromCPU(value);
        dth.CopyFromCPU(theta);
        det.CopyFromCPU(eta);
        dal.CopyFromCPU(alpha);
        dst.CopyFromCPU(initialState);
        var accelerator = device.Ilgpu;
        var scratch = ws.Get<float>(SlotScratch, scratchLength);
        int threads = Math.Min(128, accelerator.MaxNumThreadsPerGroup);
        var launch = device.Kernels.Get<TitansMlpLauncher>(KernelMethod);
        launch(accelerator.DefaultStream, new KernelConfig(s.Batch * s.Heads, threads), dq, dk,
            dvv, dth, det, dal, dst, dst, scratch, dout, new TitansMlpParams(s, chunk));
        dout.CopyToCPU(output);
        if (!finalState.IsEmpty) dst.CopyToCPU(finalState);
        accelerator.Synchronize();
    }

    private static unsafe void ForwardHost(TitansMlpShape s, int chunk,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> theta, ReadOnlySpan<float> eta, ReadOnlySpan<float> alpha,
        Span<float> output, ReadOnlySpan<float> initialState, Span<float> finalState)
    {
        float[]? rented = finalState.IsEmpty
            ? ArrayPool<float>.Shared.Rent((int)s.StateLength) : null;
        try
        {
            var state = rented is null ? finalState : rented.AsSpan(0, (int)s.StateLength);
            initialState.CopyTo(state); // a no-op copy when they are the same span
            fixed (float* q = query, k = key, v = value, th = theta, et = eta, al = alpha,
                   o = output, st = state)
            {
                var job = new HostJob(s, chunk, q, k, v, th, et, al, o, st);
                int items = s.Batch * s.Heads;
                if (items == 1) job.Head(0);
                else Parallel.For(0, items, job.Head);
            }
        }
        finally
        {
            if (rented is not null) ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>The pinned tensors of one host call; one (batch, head) per task.</summary>
    private sealed unsafe class HostJob(TitansMlpShape s, int chunk, float* q, float* k,
        float* v, float* theta, float* eta, float* alpha, float* o, float* state)
    {
        public void Head(int bh)
        {
            int n = s.Length, dk = s.KeyDim, dh = s.HiddenDim, dv = s.ValueDim;
            long l1 = (long)dh * dk, l2 = (long)dv * dh;
            float* w1 = state + bh * s.StateStride, s1 = w1 + l1, w2 = s1 + l1, s2 = w2 + l2;
            float* kh = k + (long)bh * n * dk, qh = q + (long)bh * n * dk;
            float* vh = v + (long)bh * n * dv, oh = o + (long)bh * n * dv;
            long g = (long)bh * n;
            // a (chunk, dh), delta (chunk, dh), SiLU(W1 q) (dh)
            float[] rented = ArrayPool<float>.Shared.Rent(2 * chunk * dh + dh);
            try
            {
                var a = rented.AsSpan(0, chunk * dh);
                var delta = rented.AsSpan(chunk * dh, chunk * dh);
                var hq = rented.AsSpan(2 * chunk * dh, dh);
                for (int c0 = 0; c0 < n; c0 += chunk)
                {
                    int c1 = Math.Min(n, c0 + chunk);
                    for (int r = c0; r < c1; r++)
                    {
                        var kr = new ReadOnlySpan<float>(kh + (long)r * dk, dk);
                        var ar = a.Slice((r - c0) * dh, dh);
                        var hr = delta.Slice((r - c0) * dh, dh);
                        for (int j = 0; j < dh; j++)
                        {
                            float h = TensorPrimitives.Dot(Row(w1, j, dk), kr);
                            hr[j] = h;
                            ar[j] = TitansMlpMemoryKernel.Silu(h);
                        }
                        for (int i = 0; i < dv; i++)
                            oh[(long)r * dv + i] = TensorPrimitives.Dot(Row(w2, i, dh), ar)
                                - vh[(long)r * dv + i];
                        for (int j = 0; j < dh; j++)
                        {
                            float back = 0f;
                            for (int i = 0; i < dv; i++)
                                back += w2[(long)i * dh + j] * oh[(long)r * dv + i];
                            hr[j] = back * TitansMlpMemoryKernel.SiluDerivative(hr[j]);
                        }
                    }
                    for (int t = c0; t < c1; t++)
                    {
                        float decay = eta[g + t], keep = 1f - alpha[g + t], lr = 2f * theta[g + t];
                        var kt = new ReadOnlySpan<float>(kh + (long)t * dk, dk);
                        var qt = new ReadOnlySpan<float>(qh + (long)t * dk, dk);
                        var at = a.Slice((t - c0) * dh, dh);
                        var dt = delta.Slice((t - c0) * dh, dh);
                        for (int j = 0; j < dh; j++)
                            Update(Row(w1, j, dk), Row(s1, j, dk), kt, lr * dt[j], decay, keep);
                        for (int i = 0; i < dv; i++)
                            Update(Row(w2, i, dh), Row(s2, i, dh), at, lr * oh[(long)t * dv + i],
                                decay, keep);
                        for (int j = 0; j < dh; j++)
                            hq[j] = TitansMlpMemoryKernel.Silu(
                                TensorPrimitives.Dot(Row(w1, j, dk), qt));
                        for (int i = 0; i < dv; i++)
                            oh[(long)t * dv + i] = TensorPrimitives.Dot(Row(w2, i, dh), hq);
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(rented);
            }
        }

        private static Span<float> Row(float* m, int row, int width) =>
            new(m + (long)row * width, width);

        /// <summary>S = decay S - g x, W = keep W + S.</summary>
        private static void Update(Span<float> w, Span<float> sm, ReadOnlySpan<float> x,
            float g, float decay, float keep)
        {
            TensorPrimitives.Multiply(sm, decay, sm);
            TensorPrimitives.MultiplyAdd(x, -g, sm, sm);
            TensorPrimitives.Multiply(w, keep, w);
            TensorPrimitives.Add(w, sm, w);
        }
    }
}

/// <summary>The loaded Titans MLP-memory kernel: stream, launch configuration, its arguments.
/// </summary>
internal delegate void TitansMlpLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
    ArrayView<float> theta, ArrayView<float> eta, ArrayView<float> alpha,
    ArrayView<float> initial, ArrayView<float> state, ArrayView<float> scratch,
    ArrayView<float> output, TitansMlpParams p);
