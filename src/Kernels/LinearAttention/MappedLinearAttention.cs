using System.Buffers;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;
using static Managed.Kernels.LinearAttention.LinearMechanismChecks;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// Normalized linear attention over raw query and key rows: phi_q(Q) and phi_k(K) by
/// <see cref="FeatureMapping"/>, then <see cref="ChunkedLinearAttention"/> (normalized, causal
/// or not, an optional chunk size and state). The composition behind
/// <see cref="BasedAttention"/> and <see cref="CenteredPolynomialAttention"/>; every argument is checked
/// before the first stage runs.
/// </summary>
internal static class MappedLinearAttention
{
    /// <summary>On host spans: the mapped features live in a buffer rented from
    /// <see cref="ArrayPool{T}"/>; on an ILGPU device each stage is staged and waited for.
    /// </summary>
    public static void Forward<TQueryMap, TKeyMap>(ComputeDevice device,
        LinearAttentionShape shape, int headDim, TQueryMap queryMap, TKeyMap keyMap,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output, bool causal, LinearAttentionState? state, int? chunkSize)
        where TQueryMap : struct, IFeatureMap
        where TKeyMap : struct, IFeatureMap
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        Validate(device, shape, headDim, queryMap, keyMap, query.Length, key.Length,
            value.Length, output.Length, causal, state, chunkSize);
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value))
            throw new ArgumentException("output must not overlap query, key or value.",
                nameof(output));
        if (shape.QueryLength + shape.KeyLength > Array.MaxLength)
            throw new ArgumentException($"phi(Q) and phi(K) would have "
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
                ReadOnlySpan<float>.Empty, output, Options(causal, chunkSize), state);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>On views of the device's accelerator, enqueued on its stream;
    /// <paramref name="features"/> (empty, or phi(Q) then phi(K)) as
    /// <see cref="HedgehogAttention"/>'s.</summary>
    public static void Forward<TQueryMap, TKeyMap>(ComputeDevice device,
        LinearAttentionShape shape, int headDim, TQueryMap queryMap, TKeyMap keyMap,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> features, bool causal,
        LinearAttentionState? state, int? chunkSize)
        where TQueryMap : struct, IFeatureMap
        where TKeyMap : struct, IFeatureMap
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        Validate(device, shape, headDim, queryMap, keyMap, query.Length, key.Length,
            value.Length, output.Length, causal, state, chunkSize);
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
            $"phi(Q) {ql} + phi(K) {kl} elements", query, key, value);
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
                ReadOnlySpan<float>.Empty, output, Options(causal, chunkSize), state);
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

    private static LinearAttentionOptions Options(bool causal, int? chunkSize) =>
        new() { Causal = causal, Normalize = true, ChunkSize = chunkSize };

    private static void Validate<TQueryMap, TKeyMap>(ComputeDevice device,
        LinearAttentionShape shape, int headDim, TQueryMap queryMap, TKeyMap keyMap,
        long query, long key, long value, long output, bool causal,
        LinearAttentionState? state, int? chunkSize)
        where TQueryMap : struct, IFeatureMap
        where TKeyMap : struct, IFeatureMap
    {
        shape.Validate(nameof(shape));
        if (headDim <= 0)
            throw new ArgumentException($"headDim must be positive, got {headDim}.",
                nameof(headDim));
        CheckTensors(shape, headDim, query, key, value, output);
        CheckMap(device, queryMap, headDim, shape.Heads, shape.Features, nameof(queryMap));
        CheckMap(device, keyMap, headDim, shape.KvHeads, shape.Features, nameof(keyMap));
        if (chunkSize is { } chunk
            && (chunk < 1 || !device.IsHost && chunk > ChunkedLinearAttention.DeviceMaxChunk))
            throw new ArgumentException($"chunkSize is {chunk}; expected 1.."
                + (device.IsHost ? "any" : ChunkedLinearAttention.DeviceMaxChunk.ToString())
                + ".", nameof(chunkSize));
        CheckState(state, device, shape, causal);
    }
}
