using System.Buffers;
using System.Numerics.Tensors;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// The size of one prefix-scan call: one query per (batch, head) q (batch, heads, headDim),
/// K (batch, kvHeads, length, headDim), V (batch, kvHeads, length, valueDim), output (batch,
/// heads, length, valueDim): row t is the attention output over keys 0..t. The state is
/// (batch, heads, 2 + valueDim): per (batch, head) the record [m, l, a_0 .. a_{valueDim-1}].
/// Dense row-major; heads must be a multiple of kvHeads (GQA).
/// </summary>
public readonly record struct PrefixScanShape(
    int Batch, int Heads, int KvHeads, int Length, int HeadDim, int ValueDim)
{
    /// <summary>Query heads sharing one KV head: heads / kvHeads.</summary>
    public int GroupSize => Heads / KvHeads;

    /// <summary>batch * heads * headDim</summary>
    public long QueryLength => (long)Batch * Heads * HeadDim;
    /// <summary>batch * kvHeads * length * headDim</summary>
    public long KeyLength => (long)Batch * KvHeads * Length * HeadDim;
    /// <summary>batch * kvHeads * length * valueDim</summary>
    public long ValueLength => (long)Batch * KvHeads * Length * ValueDim;
    /// <summary>batch * heads * length * valueDim</summary>
    public long OutputLength => (long)Batch * Heads * Length * ValueDim;
    /// <summary>2 + valueDim: one (m, l, a) record.</summary>
    public int StateStride => 2 + ValueDim;
    /// <summary>batch * heads * (2 + valueDim)</summary>
    public long StateLength => (long)Batch * Heads * StateStride;

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not
    /// valid.</summary>
    public void Validate(string paramName = "shape")
    {
        Positive(Batch, nameof(Batch), paramName);
        Positive(Heads, nameof(Heads), paramName);
        Positive(KvHeads, nameof(KvHeads), paramName);
        Positive(Length, nameof(Length), paramName);
        Positive(HeadDim, nameof(HeadDim), paramName);
        Positive(ValueDim, nameof(ValueDim), paramName);
        if (Heads % KvHeads != 0)
            throw new ArgumentException(
                $"Heads ({Heads}) must be a multiple of KvHeads ({KvHeads}).", paramName);
        if (ValueDim > int.MaxValue - 2 || (long)Batch * Heads > int.MaxValue)
            throw new ArgumentException(
                $"{this}: batch x heads and valueDim + 2 must fit an int.", paramName);
    }

    private static void Positive(int value, string dim, string paramName)
    {
        if (value <= 0)
            throw new ArgumentException($"{dim} must be positive, got {value}.", paramName);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} Hq={Heads} Hkv={KvHeads} N={Length} D={HeadDim} Dv={ValueDim}";
}

/// <summary>Per-call options of <see cref="PrefixScanAttention"/>.</summary>
public readonly record struct PrefixScanOptions
{
    /// <summary>Multiplier of q.k; null means 1/sqrt(headDim).</summary>
    public float? Scale { get; init; }

    /// <summary>Host threads; null: all processors.</summary>
    public int? MaxDegreeOfParallelism { get; init; }

    /// <summary>Key blocks per (batch, head) of the host's three-phase scan; null: from the
    /// threads and the length (one block when batch x heads keeps every thread busy). More
    /// than the length means one key per block. Results do not depend on it beyond rounding.
    /// </summary>
    public int? HostBlocks { get; init; }

    /// <summary>The scale in force for <paramref name="headDim"/>.</summary>
    public float ScaleFor(int headDim) => Scale ?? 1f / MathF.Sqrt(headDim);
}

/// <summary>
/// Attention as a many-to-many RNN, the core of Aaren (Feng et al., "Attention as an RNN"):
/// for one query q per (batch, head), the softmax attention output over every prefix of the
/// keys, o_t = sum_{s &lt;= t} exp(q.k_s scale - m_t) v_s / sum_{s &lt;= t} exp(q.k_s scale - m_t),
/// t = 0..length-1, exactly causal attention of that one query. The prefix states (m, l, a)
/// (the running max, sum of weights and weighted sum of values, relative to m) combine
/// associatively, (m1, l1, a1) + (m2, l2, a2) = (m, l1 e^(m1-m) + l2 e^(m2-m),
/// a1 e^(m1-m) + a2 e^(m2-m)) with m = max(m1, m2), so all outputs come from a parallel prefix
/// scan. The host splits each (batch, head)'s keys into blocks over threads: each block's
/// total (sequential scan), an exclusive scan of the totals, then each block rescans from its
/// prefix (the classic three-phase scan); an ILGPU device runs one kernel with one group per
/// (batch, head) (<see cref="PrefixScanKernel"/>). Results do not depend on the block count or
/// the group size beyond rounding.
/// <para>
/// State: a call may start from the state (m, l, a) of the keys before it and leave the state
/// after its last key (record [m, l, a_0..a_{valueDim-1}] per (batch, head); the empty state
/// is m = -infinity, l = 0, a = 0, see <see cref="InitializeState"/>), so a long sequence can
/// be scanned in parts, and a call of length 1 is the recurrent decode step; <see cref="Step"/>
/// is that step for one (batch, head) on the host. Aaren's learned query token and its
/// stacking are model layers around this.
/// </para>
/// </summary>
public static class PrefixScanAttention
{
    /// <summary>Largest head dim on ILGPU devices (the query lives in shared memory). The value
    /// dim and the length have no device limit: value columns go in slices of 16, and the
    /// scores of batch x heads x length keys in device scratch.</summary>
    public const int DeviceMaxHeadDim = PrefixScanKernel.MaxHeadDim;

    /// <summary>The host's smallest default block: fewer keys per block cost more in the
    /// combine than the threads gain.</summary>
    private const int MinHostBlock = 256;

    private const int SlotQuery = 0, SlotKey = 1, SlotValue = 2, SlotOutput = 3,
        SlotScores = 4, SlotInitial = 5, SlotFinal = 6;

    internal static readonly MethodInfo KernelMethod =
        typeof(PrefixScanKernel).GetMethod(nameof(PrefixScanKernel.Run))!;

    /// <summary>
    /// All prefix outputs on host spans, on <paramref name="device"/> (the host's threads, or
    /// an ILGPU device: staged through its workspace, waited for).
    /// <paramref name="initialState"/>: empty (no keys before the call) or (batch, heads,
    /// 2 + valueDim), the state before the first key. <paramref name="finalState"/>: empty
    /// (not wanted) or the same size, the state after the last key; it may be the very span of
    /// initialState (the state advances in place) but must not overlap it otherwise.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and its dimensions), a dimension is not positive, the head dim exceeds
    /// <see cref="DeviceMaxHeadDim"/> on an ILGPU device, an option is not valid, or an output
    /// overlaps an input; thrown before anything is written.</exception>
    public static void Forward(ComputeDevice device, PrefixScanShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output, ReadOnlySpan<float> initialState = default,
        Span<float> finalState = default, PrefixScanOptions options = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        var plan = Validate(device, shape, query.Length, key.Length, value.Length,
            output.Length, initialState.Length, finalState.Length, options);
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(initialState) || output.Overlaps(finalState))
            throw new ArgumentException(
                "output must not overlap query, key, value or a state.", nameof(output));
        ReadOnlySpan<float> final = finalState;
        if (final.Overlaps(query) || final.Overlaps(key) || final.Overlaps(value)
            || final.Overlaps(initialState, out int offset) && offset != 0)
            throw new ArgumentException("finalState must not overlap query, key or value, and "
                + "is either initialState itself or apart from it.", nameof(finalState));
        if (device.IsHost)
        {
            ForwardHost(plan, query, key, value, output, initialState, finalState);
            return;
        }
        var ws = device.Workspace;
        var dq = ws.Get<float>(SlotQuery, query.Length);
        var dk = ws.Get<float>(SlotKey, key.Length);
        var dvv = ws.Get<float>(SlotValue, value.Length);
        var dout = ws.Get<float>(SlotOutput, output.Length);
        var dinit = initialState.IsEmpty ? default
            : ws.Get<float>(SlotInitial, initialState.Length);
        var dfinal = ws.Get<float>(SlotFinal, shape.StateLength);
        dq.CopyFromCPU(query);
        dk.CopyFromCPU(key);
        dvv.CopyFromCPU(value);
        if (!initialState.IsEmpty) dinit.CopyFromCPU(initialState);
        RunIlgpu(device, plan, dq, dk, dvv, dout, dinit, dfinal);
        dout.CopyToCPU(output);
        if (!finalState.IsEmpty) dfinal.CopyToCPU(finalState);
        device.Ilgpu.Synchronize();
    }

    /// <summary>All prefix outputs on views of the device's accelerator, enqueued on its stream
    /// (the scores go in the device's workspace). The states are views, empty or (batch,
    /// heads, 2 + valueDim), as in the span overload.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload, the device is the host, or a
    /// view is memory of another accelerator.</exception>
    public static void Forward(ComputeDevice device, PrefixScanShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> initialState, ArrayView<float> finalState,
        PrefixScanOptions options = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        var plan = Validate(device, shape, query.Length, key.Length, value.Length,
            output.Length, initialState.Length, finalState.Length, options);
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(initialState, nameof(initialState));
        device.CheckOwns(finalState, nameof(finalState));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value)
            || Overlaps(output, initialState) || Overlaps(output, finalState))
            throw new ArgumentException(
                "output must not overlap query, key, value or a state.", nameof(output));
        if (Overlaps(finalState, query) || Overlaps(finalState, key)
            || Overlaps(finalState, value) || Overlaps(finalState, initialState)
            && ((IContiguousArrayView)finalState).IndexInBytes
               != ((IContiguousArrayView)initialState).IndexInBytes)
            throw new ArgumentException("finalState must not overlap query, key or value, and "
                + "is either initialState itself or apart from it.", nameof(finalState));
        if (finalState.Length == 0)
            finalState = device.Workspace.Get<float>(SlotFinal, shape.StateLength);
        RunIlgpu(device, plan, query, key, value, output, initialState, finalState);
    }

    /// <summary>
    /// One recurrent step for one (batch, head) on the host: folds the key and value of one
    /// more token into <paramref name="state"/> ([m, l, a], 2 + valueDim floats; the empty
    /// state from <see cref="InitializeState"/>) and writes the output over every token so
    /// far, o = a / l. The scale is <paramref name="options"/>' (its other options are unused).
    /// </summary>
    /// <exception cref="ArgumentException">query and key differ in length or are empty,
    /// state is not 2 + value's length, output is not value's length, or output overlaps
    /// another argument.</exception>
    public static void Step(ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, Span<float> state, Span<float> output,
        PrefixScanOptions options = default)
    {
        if (query.IsEmpty)
            throw new ArgumentException("query is empty; expected headDim >= 1 elements.",
                nameof(query));
        if (key.Length != query.Length)
            throw new ArgumentException(
                $"key has {key.Length} elements; expected headDim {query.Length}.", nameof(key));
        if (value.IsEmpty)
            throw new ArgumentException("value is empty; expected valueDim >= 1 elements.",
                nameof(value));
        if (state.Length != value.Length + 2)
            throw new ArgumentException($"state has {state.Length} elements; expected "
                + $"2 + valueDim {value.Length} ([m, l, a]).", nameof(state));
        if (output.Length != value.Length)
            throw new ArgumentException(
                $"output has {output.Length} elements; expected valueDim {value.Length}.",
                nameof(output));
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(state))
            throw new ArgumentException("output must not overlap another argument.",
                nameof(output));
        if (options.Scale is { } sc && !float.IsFinite(sc))
            throw new ArgumentException($"Scale must be finite, got {sc}.", nameof(options));
        float s = TensorPrimitives.Dot(query, key) * options.ScaleFor(query.Length);
        Fold(s, value, ref state[0], ref state[1], state[2..]);
        TensorPrimitives.Divide(state[2..], state[1], output);
    }

    /// <summary>Writes the empty state (m = -infinity, l = 0, a = 0) into every record of
    /// <paramref name="state"/>, records of 2 + <paramref name="valueDim"/> floats.</summary>
    /// <exception cref="ArgumentException">valueDim is not positive, or the length is not a
    /// multiple of 2 + valueDim.</exception>
    public static void InitializeState(Span<float> state, int valueDim)
    {
        if (valueDim <= 0 || valueDim > int.MaxValue - 2)
            throw new ArgumentException($"valueDim must be positive, got {valueDim}.",
                nameof(valueDim));
        int stride = valueDim + 2;
        if (state.Length % stride != 0)
            throw new ArgumentException($"state has {state.Length} elements; expected a "
                + $"multiple of 2 + valueDim = {stride}.", nameof(state));
        state.Clear();
        for (int i = 0; i < state.Length; i += stride) state[i] = float.NegativeInfinity;
    }

    private static PrefixScanPlan Validate(ComputeDevice device, PrefixScanShape shape,
        long queryLength, long keyLength, long valueLength, long outputLength,
        long initialLength, long finalLength, PrefixScanOptions options)
    {
        shape.Validate(nameof(shape));
        var s = shape;
        CheckLength(queryLength, s.QueryLength, "query",
            $"batch {s.Batch} x heads {s.Heads} x headDim {s.HeadDim}");
        CheckLength(keyLength, s.KeyLength, "key",
            $"batch {s.Batch} x kvHeads {s.KvHeads} x length {s.Length} x headDim {s.HeadDim}");
        CheckLength(valueLength, s.ValueLength, "value",
            $"batch {s.Batch} x kvHeads {s.KvHeads} x length {s.Length} x valueDim "
            + $"{s.ValueDim}");
        CheckLength(outputLength, s.OutputLength, "output",
            $"batch {s.Batch} x heads {s.Heads} x length {s.Length} x valueDim {s.ValueDim}");
        string state = $"batch {s.Batch} x heads {s.Heads} x (2 + valueDim {s.ValueDim}) "
            + "(or empty)";
        if (initialLength != 0) CheckLength(initialLength, s.StateLength, "initialState", state);
        if (finalLength != 0) CheckLength(finalLength, s.StateLength, "finalState", state);
        if (options.Scale is { } sc && !float.IsFinite(sc))
            throw new ArgumentException($"Scale must be finite, got {sc}.", nameof(options));
        if (options.MaxDegreeOfParallelism is < 1)
            throw new ArgumentException("MaxDegreeOfParallelism must be positive, got "
                + $"{options.MaxDegreeOfParallelism}.", nameof(options));
        if (options.HostBlocks is < 1)
            throw new ArgumentException(
                $"HostBlocks must be positive, got {options.HostBlocks}.", nameof(options));
        if (!device.IsHost && s.HeadDim > DeviceMaxHeadDim)
            throw new ArgumentException($"HeadDim is {s.HeadDim}; an ILGPU device takes at most "
                + $"{DeviceMaxHeadDim} (the query lives in shared memory).", nameof(shape));
        int threads = options.MaxDegreeOfParallelism ?? Environment.ProcessorCount;
        int heads = s.Batch * s.Heads, n = s.Length;
        int blocks = options.HostBlocks
            ?? (threads <= 1 || heads >= threads ? 1
                : Math.Min((threads + heads - 1) / heads, (n + MinHostBlock - 1) / MinHostBlock));
        blocks = Math.Clamp(blocks, 1, n);
        int blockLength = (n + blocks - 1) / blocks;
        blocks = (n + blockLength - 1) / blockLength; // no empty blocks
        return new PrefixScanPlan(shape, options.ScaleFor(s.HeadDim), threads, blocks,
            blockLength);
    }

    private static void CheckLength(long actual, long expected, string name, string layout)
    {
        if (actual != expected)
            throw new ArgumentException(
                $"{name} has {actual} elements; expected {expected} = {layout}.", name);
    }

    private static bool Overlaps(ArrayView<float> a, ArrayView<float> b)
    {
        if (a.Length == 0 || b.Length == 0) return false;
        IContiguousArrayView x = a, y = b;
        return ReferenceEquals(x.Buffer, y.Buffer)
            && x.IndexInBytes < y.IndexInBytes + y.LengthInBytes
            && y.IndexInBytes < x.IndexInBytes + x.LengthInBytes;
    }

    // ---------------------------------------------------------------- ILGPU

    /// <summary>One launch: batch x heads groups; the scores in workspace scratch.</summary>
    private static void RunIlgpu(ComputeDevice device, PrefixScanPlan plan,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> initialState, ArrayView<float> finalState)
    {
        var shape = plan.Shape;
        var accelerator = device.Ilgpu;
        var scores = device.Workspace.Get<float>(SlotScores, // (batch, heads, length)
            (long)shape.Batch * shape.Heads * shape.Length);
        bool readState = initialState.Length != 0;
        // Never read without a state; any view of the device binds the parameter.
        if (!readState) initialState = finalState;
        int threads = Math.Min(PrefixScanKernel.MaxThreads, accelerator.MaxNumThreadsPerGroup);
        int segment = (shape.Length + threads - 1) / threads;
        var p = new PrefixScanParams(shape, plan.Scale, segment, readState);
        var launch = device.Kernels.Get<PrefixScanLauncher>(KernelMethod);
        launch(accelerator.DefaultStream, new KernelConfig(shape.Batch * shape.Heads, threads),
            query, key, value, scores, initialState, finalState, output, p);
    }

    // ---------------------------------------------------------------- host

    private static unsafe void ForwardHost(PrefixScanPlan plan, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        ReadOnlySpan<float> initialState, Span<float> finalState)
    {
        var shape = plan.Shape;
        int heads = shape.Batch * shape.Heads;
        // Slot (bh, 0): the carried state, then the exclusive prefix of block 0; slot (bh, i):
        // block i-1's total, then block i's exclusive prefix (after phase 2).
        long slots = (long)heads * plan.Blocks * shape.StateStride;
        long scoreCount = plan.Blocks > 1 ? (long)heads * shape.Length : 0; // (bh, length)
        if (slots > Array.MaxLength || scoreCount > Array.MaxLength)
            throw new ArgumentException($"{shape} with {plan.Blocks} host blocks needs more "
                + "scratch than one array holds; use fewer blocks.", "options");
        float[] prefixes = ArrayPool<float>.Shared.Rent((int)slots);
        float[] scores = ArrayPool<float>.Shared.Rent((int)scoreCount);
        try
        {
            fixed (float* q = query, k = key, v = value, o = output, init = initialState,
                   fin = finalState, pre = prefixes, sc = scores)
            {
                var job = new HostJob(plan, q, k, v, o, init, fin, pre, sc);
                int parts = heads * plan.Blocks;
                if (plan.Blocks > 1)
                {
                    Run(parts, plan.Threads, job.BlockTotal);
                    Run(heads, plan.Threads, job.ScanTotals);
                }
                Run(parts, plan.Threads, job.Rescan);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(prefixes);
            ArrayPool<float>.Shared.Return(scores);
        }
    }

    private static void Run(int count, int threads, Action<int> body)
    {
        if (threads <= 1 || count == 1)
            for (int i = 0; i < count; i++) body(i);
        else
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads },
                body);
    }

    /// <summary>Folds one score s and its value row into (m, l, a): the online softmax
    /// update; exp(-inf) = 0 rescales an empty state away.</summary>
    private static void Fold(float s, ReadOnlySpan<float> v, ref float m, ref float l,
        Span<float> a)
    {
        if (s > m)
        {
            float r = MathF.Exp(m - s);
            l = l * r + 1f;
            TensorPrimitives.MultiplyAdd(a, r, v, a);
            m = s;
        }
        else
        {
            float w = MathF.Exp(s - m);
            l += w;
            TensorPrimitives.MultiplyAdd(v, w, a, a);
        }
    }

    /// <summary>(m, l, a) = (pm, pl, pa) + (m, l, a), as the kernel's combine.</summary>
    private static void Combine(float pm, float pl, ReadOnlySpan<float> pa, ref float m,
        ref float l, Span<float> a)
    {
        float mx = MathF.Max(pm, m);
        float fp = pm == mx ? 1f : MathF.Exp(pm - mx);
        float fo = m == mx ? 1f : MathF.Exp(m - mx);
        l = pl * fp + l * fo;
        TensorPrimitives.Multiply(a, fo, a);
        TensorPrimitives.MultiplyAdd(pa, fp, a, a);
        m = mx;
    }

    /// <summary>The pinned tensors and scratch of one host call; its three phases.</summary>
    private sealed unsafe class HostJob(PrefixScanPlan plan, float* q, float* k, float* v,
        float* o, float* initial, float* final, float* prefixes, float* scores)
    {
        private readonly PrefixScanShape _s = plan.Shape;

        private Span<float> Slot(int bh, int i) => new(
            prefixes + ((long)bh * plan.Blocks + i) * _s.StateStride, _s.StateStride);

        private float Score(int bh, int j)
        {
            int b = bh / _s.Heads, kvh = bh % _s.Heads / _s.GroupSize, d = _s.HeadDim;
            long row = (((long)b * _s.KvHeads + kvh) * _s.Length + j) * d;
            return TensorPrimitives.Dot(new ReadOnlySpan<float>(q + (long)bh * d, d),
                new ReadOnlySpan<float>(k + row, d)) * plan.Scale;
        }

        private ReadOnlySpan<float> ValueRow(int bh, int j)
        {
            int b = bh / _s.Heads, kvh = bh % _s.Heads / _s.GroupSize, dv = _s.ValueDim;
            return new(v + (((long)b * _s.KvHeads + kvh) * _s.Length + j) * dv, dv);
        }

        /// <summary>Writes the carried state (or the empty one) into slot (bh, 0).</summary>
        private void Carry(int bh)
        {
            var slot = Slot(bh, 0);
            if (initial is null) InitializeState(slot, _s.ValueDim);
            else new ReadOnlySpan<float>(initial + (long)bh * _s.StateStride, _s.StateStride)
                .CopyTo(slot);
        }

        /// <summary>Phase 1, part (bh, block): the block's scores, and its total into slot
        /// (bh, block + 1) (the last block's total is never needed).</summary>
        public void BlockTotal(int part)
        {
            int bh = part / plan.Blocks, blk = part % plan.Blocks;
            int j0 = blk * plan.BlockLength, j1 = Math.Min(_s.Length, j0 + plan.BlockLength);
            float* sc = scores + (long)bh * _s.Length;
            for (int j = j0; j < j1; j++) sc[j] = Score(bh, j);
            if (blk == plan.Blocks - 1) return;
            var slot = Slot(bh, blk + 1);
            float m = float.NegativeInfinity, l = 0f;
            var a = slot[2..];
            a.Clear();
            for (int j = j0; j < j1; j++) Fold(sc[j], ValueRow(bh, j), ref m, ref l, a);
            slot[0] = m;
            slot[1] = l;
        }

        /// <summary>Phase 2, (batch, head) bh: slot i becomes the carried state plus the totals
        /// of blocks before i.</summary>
        public void ScanTotals(int bh)
        {
            Carry(bh);
            for (int i = 1; i < plan.Blocks; i++)
            {
                var prev = Slot(bh, i - 1);
                var cur = Slot(bh, i);
                Combine(prev[0], prev[1], prev[2..], ref cur[0], ref cur[1], cur[2..]);
            }
        }

        /// <summary>Phase 3, part (bh, block): rescans the block from its prefix (the block's
        /// slot, advanced in place), writing o_t = a_t / l_t; the last block leaves the final
        /// state.</summary>
        public void Rescan(int part)
        {
            int bh = part / plan.Blocks, blk = part % plan.Blocks, dv = _s.ValueDim;
            int j0 = blk * plan.BlockLength, j1 = Math.Min(_s.Length, j0 + plan.BlockLength);
            if (plan.Blocks == 1) Carry(bh);
            var slot = Slot(bh, blk);
            var a = slot[2..];
            float m = slot[0], l = slot[1];
            float* sc = scores + (long)bh * _s.Length;
            for (int j = j0; j < j1; j++)
            {
                float s = plan.Blocks > 1 ? sc[j] : Score(bh, j);
                Fold(s, ValueRow(bh, j), ref m, ref l, a);
                TensorPrimitives.Divide(a, l,
                    new Span<float>(o + ((long)bh * _s.Length + j) * dv, dv));
            }
            slot[0] = m;
            slot[1] = l;
            if (blk == plan.Blocks - 1 && final is not null)
                slot.CopyTo(new Span<float>(final + (long)bh * _s.StateStride, _s.StateStride));
        }
    }
}

/// <summary>One validated call: the scale in force, host threads and key blocks.</summary>
internal readonly record struct PrefixScanPlan(PrefixScanShape Shape, float Scale, int Threads,
    int Blocks, int BlockLength);

/// <summary>The loaded prefix-scan kernel: stream, launch configuration, its arguments.</summary>
internal delegate void PrefixScanLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
    ArrayView<float> scores, ArrayView<float> initialState, ArrayView<float> finalState,
    ArrayView<float> output, PrefixScanParams p);
