using System.Buffers;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// The size of one agent-attention call: Q (batch, heads, seqQ, headDim), K (batch, kvHeads,
/// seqK, headDim), V (batch, kvHeads, seqK, valueDim), agent tokens A (batch, heads, agents,
/// headDim), output (batch, heads, seqQ, valueDim), the agents' values V_A (batch, heads,
/// agents, valueDim); dense row-major. heads must be a multiple of kvHeads (GQA: the agents of
/// the query heads of a KV head read its keys).
/// </summary>
public readonly record struct AgentAttentionShape(
    int Batch, int Heads, int KvHeads, int SeqQ, int SeqK, int Agents, int HeadDim,
    int ValueDim)
{
    /// <summary>batch * heads * seqQ * headDim</summary>
    public long QueryLength => (long)Batch * Heads * SeqQ * HeadDim;
    /// <summary>batch * kvHeads * seqK * headDim</summary>
    public long KeyLength => (long)Batch * KvHeads * SeqK * HeadDim;
    /// <summary>batch * kvHeads * seqK * valueDim</summary>
    public long ValueLength => (long)Batch * KvHeads * SeqK * ValueDim;
    /// <summary>batch * heads * agents * headDim</summary>
    public long AgentLength => (long)Batch * Heads * Agents * HeadDim;
    /// <summary>batch * heads * agents * valueDim: V_A</summary>
    public long AgentValueLength => (long)Batch * Heads * Agents * ValueDim;
    /// <summary>batch * heads * seqQ * valueDim</summary>
    public long OutputLength => (long)Batch * Heads * SeqQ * ValueDim;

    /// <summary>Stage 1, agents as queries over the keys: V_A = softmax(A K^T scale) V.</summary>
    public AttentionShape AgentStage => new(Batch, Heads, KvHeads, Agents, SeqK, HeadDim, ValueDim);

    /// <summary>Stage 2, queries over the agents: O = softmax(Q A^T scale) V_A.</summary>
    public AttentionShape QueryStage => new(Batch, Heads, Heads, SeqQ, Agents, HeadDim, ValueDim);

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not
    /// valid.</summary>
    public void Validate(string paramName = "shape")
    {
        Positive(Batch, nameof(Batch), paramName);
        Positive(Heads, nameof(Heads), paramName);
        Positive(KvHeads, nameof(KvHeads), paramName);
        Positive(SeqQ, nameof(SeqQ), paramName);
        Positive(SeqK, nameof(SeqK), paramName);
        Positive(Agents, nameof(Agents), paramName);
        Positive(HeadDim, nameof(HeadDim), paramName);
        Positive(ValueDim, nameof(ValueDim), paramName);
        if (Heads % KvHeads != 0)
            throw new ArgumentException(
                $"Heads ({Heads}) must be a multiple of KvHeads ({KvHeads}).", paramName);
    }

    private static void Positive(int value, string dim, string paramName)
    {
        if (value <= 0)
            throw new ArgumentException($"{dim} must be positive, got {value}.", paramName);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} Hq={Heads} Hkv={KvHeads} Nq={SeqQ} Nk={SeqK} Na={Agents} D={HeadDim} "
        + $"Dv={ValueDim}";
}

/// <summary>
/// Agent attention (Han et al., "Agent Attention: On the Integration of Softmax and Linear
/// Attention"): agents aggregate the values, V_A = softmax(A K^T * scale) V, then the queries
/// read the agents, O = softmax(Q A^T * scale) V_A, so the cost is O(n * agents * d) and no
/// seqQ x seqK weight exists. Equivalent to linear attention with the feature maps
/// softmax(Q A^T) and softmax(A K^T); both factors are row-stochastic, so every output row is a
/// convex combination of V rows. Both stages are exact softmax attention
/// (<see cref="FlashAttention"/> with no score modifier and no mask), on every device.
/// <para>
/// The agent tokens are an input: the paper pools them from Q (and this call does not care
/// how they were made). The paper's agent bias (position biases added to both score matrices)
/// and its depth-wise convolution term added to O are model layers around this call and are
/// left out. The scale is <see cref="AttentionOptions.Scale"/> (default 1/sqrt(headDim)) for
/// both stages; the options' tuning applies to both; tensors are dense (no layout, no query
/// position).
/// </para>
/// </summary>
public static class AgentAttention
{
    /// <summary>
    /// Agent attention on host spans, on <paramref name="device"/>: the host SIMD kernels, or
    /// an ILGPU device (each stage staged through the device, waited for). V_A lives in a
    /// buffer rented from <see cref="ArrayPool{T}"/> for the call.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and its dimensions), a dimension is not positive, a dim exceeds the ILGPU
    /// kernels' limit, an option is not valid, or the output overlaps an input; thrown before
    /// anything runs.</exception>
    public static void Forward(ComputeDevice device, AgentAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> agents, Span<float> output, AttentionOptions options = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        Validate(device, shape, query.Length, key.Length, value.Length, agents.Length,
            output.Length, options);
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(agents))
            throw new ArgumentException("output must not overlap query, key, value or agents.",
                nameof(output));
        if (shape.AgentValueLength > Array.MaxLength)
            throw new ArgumentException($"V_A would have {shape.AgentValueLength} elements; a "
                + $"host buffer holds at most {Array.MaxLength}.", nameof(shape));
        int length = (int)shape.AgentValueLength;
        float[] rented = ArrayPool<float>.Shared.Rent(length);
        try
        {
            var agentValues = rented.AsSpan(0, length); // (batch, heads, agents, valueDim)
            FlashAttention.Forward(device, shape.AgentStage, agents, key, value, agentValues,
                Span<float>.Empty, default(NoScore), default(NoMask), default(SoftmaxNormalizer),
                options);
            FlashAttention.Forward(device, shape.QueryStage, query, agents, agentValues, output,
                Span<float>.Empty, default(NoScore), default(NoMask), default(SoftmaxNormalizer),
                options);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Agent attention on views of <paramref name="device"/>'s accelerator, enqueued on its
    /// stream. <paramref name="agentValues"/> receives V_A (batch, heads, agents, valueDim); it
    /// may be empty, and then a buffer is allocated for the call and released after the call
    /// waits for the device (pass one to keep the call asynchronous and allocation-free).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator; or agentValues has the wrong length or overlaps
    /// another tensor.</exception>
    public static void Forward(ComputeDevice device, AgentAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> agents, ArrayView<float> output, ArrayView<float> agentValues,
        AttentionOptions options = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        Validate(device, shape, query.Length, key.Length, value.Length, agents.Length,
            output.Length, options);
        if (agentValues.Length != 0)
            AttentionShape.CheckLength(agentValues.Length, shape.AgentValueLength,
                nameof(agentValues), $"batch {shape.Batch} x heads {shape.Heads} x agents "
                + $"{shape.Agents} x valueDim {shape.ValueDim} (or empty)");
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(agents, nameof(agents));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(agentValues, nameof(agentValues));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value)
            || Overlaps(output, agents) || Overlaps(output, agentValues))
            throw new ArgumentException(
                "output must not overlap query, key, value, agents or agentValues.",
                nameof(output));
        if (Overlaps(agentValues, query) || Overlaps(agentValues, key)
            || Overlaps(agentValues, value) || Overlaps(agentValues, agents))
            throw new ArgumentException(
                "agentValues must not overlap query, key, value or agents.",
                nameof(agentValues));
        MemoryBuffer1D<float, Stride1D.Dense>? owned = null;
        if (agentValues.Length == 0)
        {
            owned = device.Ilgpu.Allocate1D<float>(shape.AgentValueLength);
            agentValues = owned.View;
        }
        try
        {
            FlashAttention.Forward(device, shape.AgentStage, agents, key, value, agentValues,
                ArrayView<float>.Empty, default(NoScore), default(NoMask),
                default(SoftmaxNormalizer), options);
            FlashAttention.Forward(device, shape.QueryStage, query, agents, agentValues, output,
                ArrayView<float>.Empty, default(NoScore), default(NoMask),
                default(SoftmaxNormalizer), options);
        }
        finally
        {
            if (owned is not null)
            {
                // The stages read the buffer in stream order: free it only once they ran.
                device.Ilgpu.Synchronize();
                owned.Dispose();
            }
        }
    }

    /// <summary>Every length, option and device limit of a call, before any stage runs (each
    /// stage validates again, but a failure in stage 2 must not follow a stage 1 that ran).
    /// </summary>
    private static void Validate(ComputeDevice device, AgentAttentionShape shape,
        long queryLength, long keyLength, long valueLength, long agentLength,
        long outputLength, AttentionOptions options)
    {
        shape.Validate(nameof(shape));
        var s = shape;
        AttentionShape.CheckLength(queryLength, s.QueryLength, "query",
            $"batch {s.Batch} x heads {s.Heads} x seqQ {s.SeqQ} x headDim {s.HeadDim}");
        AttentionShape.CheckLength(keyLength, s.KeyLength, "key",
            $"batch {s.Batch} x kvHeads {s.KvHeads} x seqK {s.SeqK} x headDim {s.HeadDim}");
        AttentionShape.CheckLength(valueLength, s.ValueLength, "value",
            $"batch {s.Batch} x kvHeads {s.KvHeads} x seqK {s.SeqK} x valueDim {s.ValueDim}");
        AttentionShape.CheckLength(agentLength, s.AgentLength, "agents",
            $"batch {s.Batch} x heads {s.Heads} x agents {s.Agents} x headDim {s.HeadDim}");
        AttentionShape.CheckLength(outputLength, s.OutputLength, "output",
            $"batch {s.Batch} x heads {s.Heads} x seqQ {s.SeqQ} x valueDim {s.ValueDim}");
        if (options.Layout != default || options.QueryPosition is not null)
            throw new ArgumentException(
                "Agent attention takes dense tensors: no Layout and no QueryPosition.",
                nameof(options));
        // The stages' own checks of the options (scale, tuning), run here once, up front.
        FlashAttention.ValidateCall(s.AgentStage, s.AgentLength, s.KeyLength, s.ValueLength,
            s.AgentValueLength, 0, options);
        if (!device.IsHost && (s.HeadDim > FlashAttention.MaxIlgpuHeadDim
            || s.ValueDim > FlashAttention.MaxIlgpuHeadDim))
            throw new ArgumentException(
                $"HeadDim ({s.HeadDim}) and ValueDim ({s.ValueDim}) must be <= "
                + $"{FlashAttention.MaxIlgpuHeadDim} on ILGPU devices.", nameof(shape));
    }

    private static bool Overlaps(ArrayView<float> a, ArrayView<float> b)
    {
        if (a.Length == 0 || b.Length == 0) return false;
        IContiguousArrayView x = a, y = b;
        return ReferenceEquals(x.Buffer, y.Buffer)
            && x.IndexInBytes < y.IndexInBytes + y.LengthInBytes
            && y.IndexInBytes < x.IndexInBytes + x.LengthInBytes;
    }
}
