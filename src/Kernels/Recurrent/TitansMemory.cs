using System.Buffers;
using System.Numerics.Tensors;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.Recurrent;

/// <summary>
/// The size of one Titans memory call: q and k (batch, heads, length, keyDim), v and output
/// (batch, heads, length, valueDim), the gates theta, eta, alpha (batch, heads, length), the
/// state (batch, heads, 2, valueDim, keyDim): per (batch, head) the memory W then the
/// surprise S, each valueDim x keyDim row-major. Dense row-major.
/// </summary>
public readonly record struct TitansShape(int Batch, int Heads, int Length, int KeyDim,
    int ValueDim)
{
    /// <summary>batch * heads * length * keyDim</summary>
    public long KeyLength => (long)Batch * Heads * Length * KeyDim;
    /// <summary>batch * heads * length * valueDim</summary>
    public long ValueLength => (long)Batch * Heads * Length * ValueDim;
    /// <summary>batch * heads * length</summary>
    public long GateLength => (long)Batch * Heads * Length;
    /// <summary>batch * heads * 2 * valueDim * keyDim</summary>
    public long StateLength => (long)Batch * Heads * 2 * ValueDim * KeyDim;

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not
    /// valid.</summary>
    public void Validate(string paramName = "shape")
    {
        Positive(Batch, nameof(Batch), paramName);
        Positive(Heads, nameof(Heads), paramName);
        Positive(Length, nameof(Length), paramName);
        Positive(KeyDim, nameof(KeyDim), paramName);
        Positive(ValueDim, nameof(ValueDim), paramName);
        if ((long)Batch * Heads * ValueDim > int.MaxValue)
            throw new ArgumentException(
                $"{this}: batch x heads x valueDim must fit an int.", paramName);
    }

    internal static void Positive(int value, string dim, string paramName)
    {
        if (value <= 0)
            throw new ArgumentException($"{dim} must be positive, got {value}.", paramName);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} H={Heads} N={Length} Dk={KeyDim} Dv={ValueDim}";
}

/// <summary>
/// The neural long-term memory of Titans (Behrouz, Zhong and Mirrokni, "Titans: Learning to
/// Memorize at Test Time", section 3.1-3.2), forward pass with given projections and gates,
/// for the linear memory M(x) = W x (one valueDim x keyDim matrix per (batch, head)). Per
/// token t, with the associative loss l(W; x_t) = ||W k_t - v_t||^2 (eq. 12):
/// <code>
/// S_t = eta_t S_(t-1) - theta_t grad l(W'; x_t),  grad l(W; x_t) = 2 (W k_t - v_t) k_t^T
/// W_t = (1 - alpha_t) W_(t-1) + S_t                                  (eq. 13-14)
/// y_t = W_t q_t                                                      (eq. 15, read after the
///                                                                     write)
/// </code>
/// where W' is the memory at the start of the token's chunk: the paper's parallel training
/// form (section 3.2) splits the sequence into chunks of b tokens and takes every gradient of
/// a chunk at the chunk's first memory (mini-batch gradient descent), then applies momentum
/// and decay token by token. With b = 1, W' = W_(t-1) and this is the paper's sequential
/// recurrence; a larger b is a different (the paper's trained) model, not an approximation
/// checked against b = 1. S_(-1) and W_(-1) are the initial state (zeros by default).
/// eta_t (momentum decay), theta_t (inner learning rate) and alpha_t (forgetting) are the
/// data-dependent gates the model computes from x_t; here they are inputs per (batch, head,
/// token); q, k, v are the model's projections (the paper's SiLU and l2-normalized q, k are
/// layers before this call).
/// <para>
/// The memory's rows are independent (row i sees only component i of the errors), so the host
/// runs (batch, head) pairs in parallel and an ILGPU device one thread per (batch, head, row)
/// (<see cref="TitansMemoryKernel"/>): per chunk, the errors W' k_r - v_r of all its tokens
/// (the chunk's one matmul with the start memory), then the momentum and decay scan.
/// </para>
/// </summary>
public static class TitansMemory
{
    private const int SlotQuery = 0, SlotKey = 1, SlotValue = 2, SlotTheta = 3, SlotEta = 4,
        SlotAlpha = 5, SlotState = 6, SlotOutput = 7;

    internal static readonly MethodInfo KernelMethod =
        typeof(TitansMemoryKernel).GetMethod(nameof(TitansMemoryKernel.Run))!;

    /// <summary>
    /// y_t = W_t q_t for every token, on host spans, on <paramref name="device"/> (the host's
    /// threads, or an ILGPU device: staged through its workspace, waited for), with chunks of
    /// <paramref name="chunkSize"/> tokens (1: the token-by-token recurrence).
    /// <paramref name="initialState"/>: empty (W = S = 0) or (batch, heads, 2, valueDim,
    /// keyDim). <paramref name="finalState"/>: empty (not wanted) or the same size, the state
    /// after the last token; it may be the very span of initialState (the state advances in
    /// place) but must not overlap it otherwise. A call continues exactly from a state, so a
    /// sequence split at chunk boundaries gives the same outputs as one call.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and its dimensions), a gate is not finite or alpha is outside [0, 1],
    /// the chunk size is not positive, or an output overlaps an input; thrown before anything
    /// is written.</exception>
    public static void Forward(ComputeDevice device, TitansShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> theta, ReadOnlySpan<float> eta, ReadOnlySpan<float> alpha,
        Span<float> output, int chunkSize, ReadOnlySpan<float> initialState = default,
        Span<float> finalState = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        Validate(shape, query.Length, key.Length, value.Length, theta, eta, alpha,
            output.Length, chunkSize, initialState.Length, finalState.Length);
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
        if (device.IsHost)
        {
            ForwardHost(shape, chunkSize, query, key, value, theta, eta, alpha, output,
                initialState, finalState);
            return;
        }
        var ws = device.Workspace;
        var dq = ws.Get<float>(SlotQuery, query.Length);
        var dk = ws.Get<float>(SlotKey, key.Length);
        var dvv = ws.Get<float>(SlotValue, value.Length);
        var dth = ws.Get<float>(SlotTheta, theta.Length);
        var det = ws.Get<float>(SlotEta, eta.Length);
        var dal = ws.Get<float>(SlotAlpha, alpha.Length);
        var dst = ws.Get<float>(SlotState, shape.StateLength);
        var dout = ws.Get<float>(SlotOutput, output.Length);
        dq.CopyFromCPU(query);
        dk.CopyFromCPU(key);
        dvv.CopyFromCPU(value);
        dth.CopyFromCPU(theta);
        det.CopyFromCPU(eta);
        dal.CopyFromCPU(alpha);
        if (!initialState.IsEmpty) dst.CopyFromCPU(initialState);
        RunIlgpu(device, shape, chunkSize, dq, dk, dvv, dth, det, dal, dst, dst, dout,
            !initialState.IsEmpty);
        dout.CopyToCPU(output);
        if (!finalState.IsEmpty) dst.CopyToCPU(finalState);
        device.Ilgpu.Synchronize();
    }

    private static void Validate(TitansShape shape, long queryLength, long keyLength,
        long valueLength, ReadOnlySpan<float> theta, ReadOnlySpan<float> eta,
        ReadOnlySpan<float> alpha, long outputLength, int chunkSize, long initialLength,
        long finalLength)
    {
        shape.Validate(nameof(shape));
        var s = shape;
        string bhn = $"batch {s.Batch} x heads {s.Heads} x length {s.Length}";
        MultiDimensionalEma.CheckLength(queryLength, s.KeyLength, "query",
            $"{bhn} x keyDim {s.KeyDim}");
        MultiDimensionalEma.CheckLength(keyLength, s.KeyLength, "key",
            $"{bhn} x keyDim {s.KeyDim}");
        MultiDimensionalEma.CheckLength(valueLength, s.ValueLength, "value",
            $"{bhn} x valueDim {s.ValueDim}");
        MultiDimensionalEma.CheckLength(theta.Length, s.GateLength, "theta", bhn);
        MultiDimensionalEma.CheckLength(eta.Length, s.GateLength, "eta", bhn);
        MultiDimensionalEma.CheckLength(alpha.Length, s.GateLength, "alpha", bhn);
        MultiDimensionalEma.CheckLength(outputLength, s.ValueLength, "output",
            $"{bhn} x valueDim {s.ValueDim}");
        string state = $"batch {s.Batch} x heads {s.Heads} x 2 x valueDim {s.ValueDim} x "
            + $"keyDim {s.KeyDim} (or empty)";
        if (initialLength != 0)
            MultiDimensionalEma.CheckLength(initialLength, s.StateLength, "initialState", state);
        if (finalLength != 0)
            MultiDimensionalEma.CheckLength(finalLength, s.StateLength, "finalState", state);
        if (chunkSize < 1)
            throw new ArgumentException($"chunkSize must be positive, got {chunkSize}.",
                nameof(chunkSize));
        CheckGates(theta, eta, alpha);
    }

    /// <summary>Throws unless theta and eta are finite and every alpha is a forgetting gate in
    /// [0, 1] (the linear and the MLP memory take the same gates).</summary>
    internal static void CheckGates(ReadOnlySpan<float> theta, ReadOnlySpan<float> eta,
        ReadOnlySpan<float> alpha)
    {
        MultiDimensionalEma.CheckFinite(theta, "theta");
        MultiDimensionalEma.CheckFinite(eta, "eta");
        for (int i = 0; i < alpha.Length; i++)
            if (!(alpha[i] >= 0f && alpha[i] <= 1f))
                throw new ArgumentException(
                    $"alpha[{i}] is {alpha[i]}; expected a forgetting gate in [0, 1].",
                    nameof(alpha));
    }

    private static void RunIlgpu(ComputeDevice device, TitansShape shape, int chunk,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> theta, ArrayView<float> eta, ArrayView<float> alpha,
        ArrayView<float> initial, ArrayView<float> state, ArrayView<float> output,
        bool readState)
    {
        var accelerator = device.Ilgpu;
        int threads = Math.Min(128, accelerator.MaxNumThreadsPerGroup);
        int items = shape.Batch * shape.Heads * shape.ValueDim;
        var launch = device.Kernels.Get<TitansLauncher>(KernelMethod);
        launch(accelerator.DefaultStream,
            new KernelConfig((items + threads - 1) / threads, threads), query, key, value,
            theta, eta, alpha, initial, state, output,
            new TitansParams(shape, Math.Min(chunk, shape.Length), readState));
    }

    // ---------------------------------------------------------------- host

    private static unsafe void ForwardHost(TitansShape s, int chunk, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, ReadOnlySpan<float> theta,
        ReadOnlySpan<float> eta, ReadOnlySpan<float> alpha, Span<float> output,
        ReadOnlySpan<float> initialState, Span<float> finalState)
    {
        float[]? rented = finalState.IsEmpty
            ? ArrayPool<float>.Shared.Rent((int)s.StateLength) : null;
        try
        {
            var state = rented is null ? finalState : rented.AsSpan(0, (int)s.StateLength);
            if (initialState.IsEmpty) state.Clear();
            else initialState.CopyTo(state); // a no-op copy when they are the same span
            fixed (float* q = query, k = key, v = value, th = theta, et = eta, al = alpha,
                   o = output, st = state)
            {
                var job = new HostJob(s, Math.Min(chunk, s.Length), q, k, v, th, et, al, o, st);
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
    private sealed unsafe class HostJob(TitansShape s, int chunk, float* q, float* k, float* v,
        float* theta, float* eta, float* alpha, float* o, float* state)
    {
        public void Head(int bh)
        {
            int n = s.Length, dk = s.KeyDim, dv = s.ValueDim;
            long plane = (long)dv * dk;
            float* w = state + bh * 2 * plane, sm = w + plane;
            float* kh = k + (long)bh * n * dk, qh = q + (long)bh * n * dk;
            float* vh = v + (long)bh * n * dv, oh = o + (long)bh * n * dv;
            long g = (long)bh * n;
            for (int c0 = 0; c0 < n; c0 += chunk)
            {
                int c1 = Math.Min(n, c0 + chunk);
                // The chunk's errors at its start memory, e_r = W' k_r - v_r (rows of o).
                for (int r = c0; r < c1; r++)
                {
                    var kr = new ReadOnlySpan<float>(kh + (long)r * dk, dk);
                    for (int i = 0; i < dv; i++)
                        oh[(long)r * dv + i] = TensorPrimitives.Dot(
                            new ReadOnlySpan<float>(w + i * dk, dk), kr) - vh[(long)r * dv + i];
                }
                for (int t = c0; t < c1; t++)
                {
                    var kt = new ReadOnlySpan<float>(kh + (long)t * dk, dk);
                    var qt = new ReadOnlySpan<float>(qh + (long)t * dk, dk);
                    float decay = eta[g + t], keep = 1f - alpha[g + t], lr = 2f * theta[g + t];
                    for (int i = 0; i < dv; i++)
                    {
                        var wi = new Span<float>(w + i * dk, dk);
                        var si = new Span<float>(sm + i * dk, dk);
                        long at = (long)t * dv + i;
                        TensorPrimitives.Multiply(si, decay, si);
                        TensorPrimitives.MultiplyAdd(kt, -lr * oh[at], si, si);
                        TensorPrimitives.Multiply(wi, keep, wi);
                        TensorPrimitives.Add(wi, si, wi);
                        oh[at] = TensorPrimitives.Dot(wi, qt);
                    }
                }
            }
        }
    }
}

/// <summary>The loaded Titans memory kernel: stream, launch configuration, its arguments.
/// </summary>
internal delegate void TitansLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
    ArrayView<float> theta, ArrayView<float> eta, ArrayView<float> alpha,
    ArrayView<float> initial, ArrayView<float> state, ArrayView<float> output, TitansParams p);
