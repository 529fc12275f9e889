using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// Lightning Attention as TransNormerLLM uses it (Qin et al., "TransNormerLLM" and "Lightning
/// Attention-2"): causal, unnormalized linear attention with a per-head decay lambda_h,
/// o_t = sum_{s &lt;= t} lambda_h^(t-s) (q_t . k_s) v_s, i.e. O = [(Q K^T) (.) M] V with
/// M_ts = lambda_h^(t-s) for s &lt;= t, else 0; as a recurrence S_t = lambda_h S_(t-1) + k_t v_t^T,
/// o_t = q_t S_t. Computed tile by tile (the quadratic form inside a chunk, the decayed state
/// across chunks) by <see cref="ChunkedLinearAttention"/> (causal, no normalizer), on every
/// device; with a <see cref="LinearAttentionState"/> a call continues from the state, so a call
/// of length 1 is the decode step.
/// <para>
/// Q and K enter as they are (the identity feature map): TransNormerLLM's activation of Q and
/// K, its LRPE, the output gate, the SimpleRMSNorm ("NormAttention") and the projections
/// are model layers around this call. No 1/sqrt(d) scale is applied. The decays come from
/// <see cref="Decays(int)"/> or the model.
/// </para>
/// </summary>
public static class LightningAttention
{
    /// <summary>
    /// TransNormerLLM's head-wise decays, as its released code (and MiniMax's Lightning
    /// Attention layers) build them: lambda_h = exp(-m_h) with ALiBi's slopes m_h: for H a power
    /// of two m_h = 2^(-8 (h + 1) / H), h = 0..H-1; otherwise the slopes of the largest power
    /// of two P &lt; H followed by every other slope of 2P (ALiBi's interpolation). In (0, 1).
    /// </summary>
    public static float[] Decays(int heads) => Decays(heads, 0, 1);

    /// <summary>
    /// The decays of layer <paramref name="layer"/> of <paramref name="layers"/>: TransNormerLLM
    /// shrinks the slopes with depth, lambda_h = exp(-m_h (1 - layer / (layers - 1) + 1e-5)),
    /// m_h the slopes of <see cref="Decays(int)"/>, so the last layer barely decays; one layer:
    /// lambda_h = exp(-m_h).
    /// </summary>
    /// <exception cref="ArgumentException">heads or layers is not positive, or layer is outside
    /// 0..layers-1.</exception>
    public static float[] Decays(int heads, int layer, int layers)
    {
        if (heads <= 0)
            throw new ArgumentException($"heads must be positive, got {heads}.", nameof(heads));
        if (layers <= 0)
            throw new ArgumentException($"layers must be positive, got {layers}.",
                nameof(layers));
        if (layer < 0 || layer >= layers)
            throw new ArgumentException($"layer is {layer}; expected 0..{layers - 1}.",
                nameof(layer));
        double depth = layers == 1 ? 1.0 : 1.0 - (double)layer / (layers - 1) + 1e-5;
        var slopes = Slopes(heads);
        var decays = new float[heads];
        for (int h = 0; h < heads; h++) decays[h] = (float)Math.Exp(-slopes[h] * depth);
        return decays;
    }

    /// <summary>
    /// Lightning attention on host spans: Q (batch, heads, length, features), K (batch, kvHeads,
    /// length, features), V (batch, kvHeads, length, valueDim), output (batch, heads, length,
    /// valueDim); <paramref name="decay"/> one lambda per KV head in (0, 1], or empty (no
    /// decay: Lightning Attention-1's plain causal linear attention). On an ILGPU device the
    /// spans are staged through the device and the call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device or the state is disposed.</exception>
    /// <exception cref="ArgumentException">As <see cref="ChunkedLinearAttention"/>: a length
    /// disagrees with the shape, a decay is outside (0, 1], the state does not fit, the chunk
    /// size is not valid, or the output overlaps an input; thrown before anything is written.
    /// </exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> decay, Span<float> output, LinearAttentionState? state = null,
        int? chunkSize = null) =>
        ChunkedLinearAttention.Forward(device, shape, query, key, value, decay, output,
            Options(chunkSize), state);

    /// <summary>Lightning attention on views of the device's accelerator, enqueued on its
    /// stream. Otherwise as the span overload.</summary>
    /// <exception cref="ArgumentException">As the span overload, the device is the host, or a
    /// view is memory of another accelerator.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ReadOnlySpan<float> decay, ArrayView<float> output, LinearAttentionState? state = null,
        int? chunkSize = null) =>
        ChunkedLinearAttention.Forward(device, shape, query, key, value, decay, output,
            Options(chunkSize), state);

    /// <summary>ALiBi's slopes (Press et al.), as TransNormerLLM's _build_slope_tensor.</summary>
    private static double[] Slopes(int heads)
    {
        static double[] PowerOfTwo(int n) =>
            Enumerable.Range(1, n).Select(i => Math.Pow(2.0, -8.0 * i / n)).ToArray();
        if (BitOperations.IsPow2(heads)) return PowerOfTwo(heads);
        int p = (int)BitOperations.RoundUpToPowerOf2((uint)heads) / 2;
        var wider = PowerOfTwo(2 * p);
        return PowerOfTwo(p).Concat(wider.Where((_, i) => i % 2 == 0).Take(heads - p)).ToArray();
    }

    private static LinearAttentionOptions Options(int? chunkSize) =>
        new() { Causal = true, Normalize = false, ChunkSize = chunkSize };
}
