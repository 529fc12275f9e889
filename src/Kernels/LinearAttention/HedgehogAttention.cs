using System.Buffers;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;
using static Managed.Kernels.LinearAttention.LinearMechanismChecks;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// Hedgehog attention (Zhang et al., "The Hedgehog &amp; the Porcupine: Expressive Linear
/// Attentions with Softmax Mimicry"): normalized linear attention whose feature maps are
/// learned, phi_q(x) = [exp(W_q x + b_q), exp(-W_q x - b_q)] and phi_k likewise with its own
/// W_k, b_k (per head, <see cref="HedgehogMap{TTable}"/>), so the weights
/// w_ts = phi_q(q_t) . phi_k(k_s) / sum_s' phi_q(q_t) . phi_k(k_s') are positive and every row
/// sums to 1; o_t = sum_s w_ts v_s over s &lt;= t (causal) or all s. Composed of
/// <see cref="FeatureMapping"/> (Q with the query map over the heads, K with the key map over
/// the KV heads) and <see cref="ChunkedLinearAttention"/> (normalized), on every device.
/// <para>
/// The maps' weights come from the model (the paper trains them by distilling softmax
/// attention, cross-entropy between the two weight maps); the Q, K, V and output
/// projections are model layers around this call. The shape is the mapped problem: Features =
/// 2m (the maps' feature count), the raw query and key rows have <c>headDim</c> elements.
/// </para>
/// </summary>
public static class HedgehogAttention
{
    /// <summary>
    /// Hedgehog attention on host spans: Q (batch, heads, length, headDim), K (batch, kvHeads,
    /// length, headDim), V (batch, kvHeads, length, valueDim), output (batch, heads, length,
    /// valueDim). The mapped features phi_q(Q), phi_k(K) live in buffers rented from
    /// <see cref="ArrayPool{T}"/> for the call; on an ILGPU device each stage is staged through
    /// the device and the call waits. A state (causal only) continues a prefix.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device or the state is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument), headDim is not positive, a map's weights do not fit (heads, headDim) or
    /// live on the wrong side, a map's feature count is not shape.Features, the state does not
    /// fit, or the output overlaps an input; thrown before anything is written.</exception>
    public static void Forward<TTable>(ComputeDevice device, LinearAttentionShape shape,
        int headDim, HedgehogMap<TTable> queryMap, HedgehogMap<TTable> keyMap,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output, bool causal = false, LinearAttentionState? state = null)
        where TTable : struct, ITable<float>
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        Validate(device, shape, headDim, queryMap, keyMap, query.Length, key.Length,
            value.Length, output.Length, causal, state);
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value))
            throw new ArgumentException("output must not overlap query, key or value.",
                nameof(output));
        if (shape.QueryLength + shape.KeyLength > Array.MaxLength)
            throw new ArgumentException($"phi_q(Q) and phi_k(K) would have "
                + $"{shape.QueryLength + shape.KeyLength} elements; a host buffer holds at most "
                + $"{Array.MaxLength}.", nameof(shape));
        int position = state?.Tokens ?? 0;
        int ql = (int)shape.QueryLength, kl = (int)shape.KeyLength;
        float[] rented = ArrayPool<float>.Shared.Rent(ql + kl);
        try
        {
            var phiQ = rented.AsSpan(0, ql);  // (batch, heads, length, features)
            var phiK = rented.AsSpan(ql, kl); // (batch, kvHeads, length, features)
            FeatureMapping.Apply(device, queryMap, shape.Batch, shape.Heads, shape.Length,
                headDim, query, phiQ, position);
            FeatureMapping.Apply(device, keyMap, shape.Batch, shape.KvHeads, shape.Length,
                headDim, key, phiK, position);
            ChunkedLinearAttention.Forward(device, shape, phiQ, phiK, value,
                ReadOnlySpan<float>.Empty, output, Options(causal), state);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Hedgehog attention on views of the device's accelerator, enqueued on its stream.
    /// <paramref name="features"/> receives phi_q(Q) (batch, heads, length, features) followed
    /// by phi_k(K) (batch, kvHeads, length, features); it may be empty, and then a buffer is
    /// allocated for the call and released after the call waits for the device (pass one to
    /// keep the call asynchronous and allocation-free). Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device or the state is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator; features has the wrong length or overlaps a
    /// tensor.</exception>
    public static void Forward<TTable>(ComputeDevice device, LinearAttentionShape shape,
        int headDim, HedgehogMap<TTable> queryMap, HedgehogMap<TTable> keyMap,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> features, bool causal = false,
        LinearAttentionState? state = null)
        where TTable : struct, ITable<float>
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        Validate(device, shape, headDim, queryMap, keyMap, query.Length, key.Length,
            value.Length, output.Length, causal, state);
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(features, nameof(features));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value)
            || Overlaps(output, features))
            throw new ArgumentException(
                "output must not overlap query, key, value or features.", nameof(output));
        long ql = shape.QueryLength, kl = shape.KeyLength;
        CheckScratch(features, ql + kl, nameof(features),
            $"phi_q(Q) {ql} + phi_k(K) {kl} elements", query, key, value);
        MemoryBuffer1D<float, Stride1D.Dense>? owned = null;
        if (features.Length == 0)
        {
            owned = device.Ilgpu.Allocate1D<float>(ql + kl);
            features = owned.View;
        }
        try
        {
            int position = state?.Tokens ?? 0;
            var phiQ = features.SubView(0, ql);
            var phiK = features.SubView(ql, kl);
            FeatureMapping.Apply(device, queryMap, shape.Batch, shape.Heads, shape.Length,
                headDim, query, phiQ, position);
            FeatureMapping.Apply(device, keyMap, shape.Batch, shape.KvHeads, shape.Length,
                headDim, key, phiK, position);
            ChunkedLinearAttention.Forward(device, shape, phiQ, phiK, value,
                ReadOnlySpan<float>.Empty, output, Options(causal), state);
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

    private static LinearAttentionOptions Options(bool causal) =>
        new() { Causal = causal, Normalize = true };

    private static void Validate<TTable>(ComputeDevice device, LinearAttentionShape shape,
        int headDim, HedgehogMap<TTable> queryMap, HedgehogMap<TTable> keyMap, long query,
        long key, long value, long output, bool causal, LinearAttentionState? state)
        where TTable : struct, ITable<float>
    {
        shape.Validate(nameof(shape));
        if (headDim <= 0)
            throw new ArgumentException($"headDim must be positive, got {headDim}.",
                nameof(headDim));
        CheckTensors(shape, headDim, query, key, value, output);
        CheckMap(device, queryMap, headDim, shape.Heads, shape.Features, nameof(queryMap));
        CheckMap(device, keyMap, headDim, shape.KvHeads, shape.Features, nameof(keyMap));
        CheckState(state, device, shape, causal);
    }
}
