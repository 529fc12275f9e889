using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

using static Managed.Kernels.LinearAttention.LinearMechanismChecks;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// Linear attention over mapped features (phi(Q), phi(K), V), causal or not, with an optional
/// per-KV-head decay lambda in (0, 1] and an optional normalizer. Causal:
/// o_t = sum_{s &lt;= t} lambda^(t-s) (phi(q_t) . phi(k_s)) v_s, computed chunk by chunk as
/// Lightning Attention does: inside a chunk the quadratic form with the causal mask, across
/// chunks the running state S = sum_s lambda^(t-s) phi(k_s) v_s^T (features x valueDim), so
/// memory and time per token do not grow with the length. Non-causal: one global state,
/// o_t = phi(q_t) S. Normalized: divided by phi(q_t) . z_t, z the same sum of phi(k_s).
/// With a <see cref="LinearAttentionState"/> a causal call starts from the state and leaves it
/// after its last token: a call of length 1 is the recurrent decode step. The host runs SIMD
/// loops on all processors (one (sequence, KV head) per task); an ILGPU device one kernel.
/// </summary>
public static partial class ChunkedLinearAttention
{
    /// <summary>Largest chunk the ILGPU kernels take (a chunk is one 64-row tile) and their
    /// default.</summary>
    public const int DeviceMaxChunk = 64;

    /// <summary>The host's default chunk.</summary>
    public const int HostChunk = 64;

    /// <summary>
    /// Linear attention on host spans; <paramref name="decay"/> empty (none) or one lambda per
    /// KV head in (0, 1] (causal only). On an ILGPU device the spans are staged through the
    /// device's workspace and the call waits for the result.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device or the state is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message
    /// names the argument and the dimension), a decay is outside (0, 1], decay or a state with
    /// a non-causal call, the state is of another device or size, an option is not valid, or
    /// the output overlaps an input; thrown before anything is written.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> decay, Span<float> output, LinearAttentionOptions options = default,
        LinearAttentionState? state = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        var plan = Validate(device, shape, query.Length, key.Length, value.Length, decay,
            output.Length, options, state);
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value))
            throw new ArgumentException("output must not overlap query, key or value.",
                nameof(output));
        if (device.IsHost)
        {
            ForwardHost(plan, query, key, value, decay, output, state);
        }
        else
        {
            var ws = device.Workspace;
            var dq = ws.Get<float>(SlotQuery, query.Length);
            var dk = ws.Get<float>(SlotKey, key.Length);
            var dv = ws.Get<float>(SlotValue, value.Length);
            var dout = ws.Get<float>(SlotOutput, output.Length);
            dq.CopyFromCPU(query);
            dk.CopyFromCPU(key);
            dv.CopyFromCPU(value);
            RunIlgpu(device, plan, dq, dk, dv, decay, dout, state);
            dout.CopyToCPU(output);
            device.Ilgpu.Synchronize();
        }
        if (state is not null) state.Tokens += shape.Length;
    }

    /// <summary>Linear attention on views of the device's accelerator, enqueued on its stream
    /// (the decay, a host span, is uploaded in stream order). Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentException">As the span overload, the device is the host, or a
    /// view is memory of another accelerator.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ReadOnlySpan<float> decay, ArrayView<float> output, LinearAttentionOptions options = default,
        LinearAttentionState? state = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        var plan = Validate(device, shape, query.Length, key.Length, value.Length, decay,
            output.Length, options, state);
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(output, nameof(output));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value))
            throw new ArgumentException("output must not overlap query, key or value.",
                nameof(output));
        RunIlgpu(device, plan, query, key, value, decay, output, state);
        if (state is not null) state.Tokens += shape.Length;
    }

    private static ChunkedPlan Validate(ComputeDevice device, LinearAttentionShape shape,
        long queryLength, long keyLength, long valueLength, ReadOnlySpan<float> decay,
        long outputLength, LinearAttentionOptions options, LinearAttentionState? state)
    {
        shape.Validate(nameof(shape));
        int b = shape.Batch, h = shape.Heads, hk = shape.KvHeads, n = shape.Length,
            f = shape.Features, dv = shape.ValueDim;
        CheckLength(queryLength, shape.QueryLength, "query",
            $"batch {b} x heads {h} x length {n} x features {f}");
        CheckLength(keyLength, shape.KeyLength, "key",
            $"batch {b} x kvHeads {hk} x length {n} x features {f}");
        CheckLength(valueLength, shape.ValueLength, "value",
            $"batch {b} x kvHeads {hk} x length {n} x valueDim {dv}");
        CheckLength(outputLength, shape.OutputLength, "output",
            $"batch {b} x heads {h} x length {n} x valueDim {dv}");
        if (!decay.IsEmpty)
        {
            if (!options.Causal)
                throw new ArgumentException(
                    "A decay needs a causal call (lambda^(t-s) weighs past keys).", nameof(decay));
            CheckLength(decay.Length, hk, "decay", $"kvHeads {hk} (or empty)");
            for (int i = 0; i < decay.Length; i++)
                if (!(decay[i] > 0f && decay[i] <= 1f))
                    throw new ArgumentException(
                        $"decay[{i}] = {decay[i]}; expected a lambda in (0, 1].", nameof(decay));
        }
        int chunk = options.ChunkSize ?? (device.IsHost ? HostChunk : DeviceMaxChunk);
        if (chunk < 1 || !device.IsHost && chunk > DeviceMaxChunk)
            throw new ArgumentException($"ChunkSize is {chunk}; expected 1.."
                + (device.IsHost ? "any" : DeviceMaxChunk.ToString()) + ".", nameof(options));
        if (options.MaxDegreeOfParallelism is < 1)
            throw new ArgumentException(
                $"MaxDegreeOfParallelism must be positive, got {options.MaxDegreeOfParallelism}.",
                nameof(options));
        CheckState(state, device, shape, options.Causal);
        return new ChunkedPlan(shape, options.Causal, options.Normalize, chunk,
            options.MaxDegreeOfParallelism ?? Environment.ProcessorCount);
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
        IContiguousArrayView p = a, q = b;
        return ReferenceEquals(p.Buffer, q.Buffer)
            && p.IndexInBytes < q.IndexInBytes + q.LengthInBytes
            && q.IndexInBytes < p.IndexInBytes + p.LengthInBytes;
    }
}

/// <summary>One validated call.</summary>
internal readonly record struct ChunkedPlan(LinearAttentionShape Shape, bool Causal,
    bool Normalize, int Chunk, int Threads);
