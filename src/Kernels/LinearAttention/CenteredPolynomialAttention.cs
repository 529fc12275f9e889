using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// Fastmax, the attention of FAST (Gerami et al., "FAST: Factorizable Attention for Speeding
/// up Transformers"): with q~ and k~ the normalized rows (centered, unit norm; see
/// <see cref="CenteredPolynomialMap"/>) and s_ts = q~_t . k~_s in [-1, 1], the weights are
/// w_ts = f(s_ts) / sum_s' f(s_ts'), f(s) = 1 + s (order 1) or 1 + s + s^2 / 2 (order 2),
/// the exponential's Taylor polynomial; o_t = sum_s w_ts v_s over all s (non-causal) or
/// s &lt;= t (causal). Every pair of tokens keeps its weight (no sparsification), yet f
/// factorizes, f(q~ . k~) = phi(q~) . phi(k~) with the monomials of <see cref="CenteredPolynomialMap"/>,
/// so the call costs O(N d^(p+1)) instead of O(N^2 d): <see cref="FeatureMapping"/> of Q and K,
/// then <see cref="ChunkedLinearAttention"/> normalized (the paper's sums over keys of 1,
/// k~ and k~ k~^T times v, and of the same without v, are the state S and normalizer z).
/// <para>
/// Order 1's weights 1 + s vanish at s = -1: a query opposite to every key it reads has a
/// weight sum of 0 (its output is then 0, or, when rounding leaves the sum barely above 0,
/// ill-conditioned; with d = 2 every centered row is +-(1, -1) / sqrt(2), so this happens
/// readily). Order 2's weights are at least 1/2.
/// </para>
/// <para>
/// No 1/sqrt(d) scale: the normalization already bounds s. The projections, the paper's
/// dropout on the factorized terms and its optional relative positional encoding are the
/// model's.
/// </para>
/// </summary>
public static class CenteredPolynomialAttention
{
    /// <summary>F of the map of <paramref name="order"/> for rows of <paramref name="headDim"/>:
    /// 1 + d (order 1) or 1 + d + d^2 (order 2); the <see cref="LinearAttentionShape.Features"/>
    /// of a call.</summary>
    /// <exception cref="ArgumentException">order is not 1 or 2.</exception>
    public static int Features(int headDim, int order)
    {
        CheckOrder(order);
        return new CenteredPolynomialMap(order).Features(headDim);
    }

    /// <summary>
    /// Fastmax on host spans: Q (batch, heads, length, headDim), K (batch, kvHeads, length,
    /// headDim), V (batch, kvHeads, length, valueDim), output (batch, heads, length, valueDim).
    /// <paramref name="shape"/> is the mapped problem: Features =
    /// <see cref="Features(int, int)"/>(headDim, order). A state (causal only) continues a
    /// prefix; <paramref name="chunkSize"/> is tuning only. Features are staged in a rented
    /// buffer; on an ILGPU device each stage is staged through the device and the call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device or the state is disposed.</exception>
    /// <exception cref="ArgumentException">order is not 1 or 2, headDim is not positive,
    /// shape.Features does not match, a length disagrees with the shape (the message names the
    /// argument and the dimensions), the chunk size is not valid for the device, the state does
    /// not fit or comes with a non-causal call, or the output overlaps an input; thrown before
    /// anything is written.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape, int headDim,
        int order, ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output, bool causal = false, LinearAttentionState? state = null,
        int? chunkSize = null)
    {
        var map = Map(shape, headDim, order);
        MappedLinearAttention.Forward(device, shape, headDim, map, map, query, key, value,
            output, causal, state, chunkSize);
    }

    /// <summary>
    /// Fastmax on views of the device's accelerator, enqueued on its stream.
    /// <paramref name="features"/> receives phi(Q) (batch, heads, length, features) followed by
    /// phi(K) (batch, kvHeads, length, features); empty: a buffer is allocated for the call
    /// and released once the device ran it. Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator; features has the wrong length or overlaps a
    /// tensor.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape, int headDim,
        int order, ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> features, bool causal = false,
        LinearAttentionState? state = null, int? chunkSize = null)
    {
        var map = Map(shape, headDim, order);
        MappedLinearAttention.Forward(device, shape, headDim, map, map, query, key, value,
            output, features, causal, state, chunkSize);
    }

    private static CenteredPolynomialMap Map(LinearAttentionShape shape, int headDim, int order)
    {
        CheckOrder(order);
        if (headDim <= 0)
            throw new ArgumentException($"headDim must be positive, got {headDim}.",
                nameof(headDim));
        if (order == 2 && headDim > 4096)
            throw new ArgumentException($"headDim is {headDim}; expected at most 4096 at order "
                + "2.", nameof(headDim));
        var map = new CenteredPolynomialMap(order);
        if (shape.Features != map.Features(headDim))
            throw new ArgumentException($"shape.Features is {shape.Features}; the order-{order} "
                + $"map of headDim {headDim} makes {map.Features(headDim)} ("
                + (order == 1 ? "1 + d" : "1 + d + d^2") + ").", nameof(shape));
        return map;
    }

    private static void CheckOrder(int order)
    {
        if (order is not (1 or 2))
            throw new ArgumentException($"order is {order}; expected 1 or 2.", nameof(order));
    }
}
