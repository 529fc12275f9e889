using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// BASED (Arora et al., "Simple linear attention language models balance the recall-throughput
/// tradeoff"): two token mixers that the paper stacks as separate layers of one hybrid model.
/// <list type="number">
/// <item><see cref="Linear(ComputeDevice, LinearAttentionShape, int, ReadOnlySpan{float},
/// ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, LinearAttentionState?, int?)"/>:
/// global causal linear attention with the second-order Taylor map
/// (<see cref="TaylorExpMap"/>) on a small projected feature dimension d' (16 in the paper),
/// phi(x) = [1, x / d'^(1/4), vec(x x^T) / (sqrt(2) sqrt(d'))], so that
/// phi(q) . phi(k) = 1 + s + s^2 / 2 with s = q . k / sqrt(d'), and
/// o_t = sum_{s &lt;= t} (phi(q_t) . phi(k_s)) v_s / (phi(q_t) . sum_{s &lt;= t} phi(k_s)): the
/// released code's normalization by the running key sum (its eps of 1e-12 is left out: the
/// denominator is at least (t + 1) / 2, as 1 + s + s^2 / 2 &gt;= 1 / 2). A fixed-size state of
/// (1 + d' + d'^2) x valueDim per head: chunked (<see cref="ChunkedLinearAttention"/>) for a
/// prefill, one token per call through a <see cref="LinearAttentionState"/> for decoding.</item>
/// <item><see cref="Window(ComputeDevice, AttentionShape, int, ReadOnlySpan{float},
/// ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>: exact causal softmax attention
/// over a short sliding window (64 in the paper) on <see cref="FlashAttention"/> with
/// <see cref="SlidingWindowMask.Causal(int)"/>, scale 1/sqrt(headDim): token t reads keys
/// t - window + 1 .. t.</item>
/// </list>
/// <para>
/// How the paper combines them: not inside one layer. A BASED model interleaves layers of
/// Taylor linear attention (global, the recall part), sliding-window softmax layers (precise
/// local shifts and comparisons) and short gated convolutions (BaseConv), each with its own
/// projections, residual and MLP; window size and feature dimension move the model along the
/// recall vs state-size curve. So the two mixers are two calls here, and the projections of
/// Q and K to d' (the linear mixer), the convolutions and the layer pattern are the model's.
/// The window is counted in keys including the query's own; the released code passes
/// flash-attn window_size = (w / 2, 0) for a configured w in one of its mixers, so a model
/// loaded from it may need window = w / 2 + 1.
/// </para>
/// </summary>
public static class BasedAttention
{
    /// <summary>The paper's projected feature dimension d'.</summary>
    public const int PaperFeatureDim = 16;

    /// <summary>The paper's sliding window.</summary>
    public const int PaperWindow = 64;

    /// <summary>F = 1 + d' + d'^2, the Taylor map's features for <paramref name="featureDim"/>
    /// = d' (the <see cref="LinearAttentionShape.Features"/> of a <see cref="Linear(
    /// ComputeDevice, LinearAttentionShape, int, ReadOnlySpan{float}, ReadOnlySpan{float},
    /// ReadOnlySpan{float}, Span{float}, LinearAttentionState?, int?)"/> call).</summary>
    public static int Features(int featureDim) => default(TaylorExpMap).Features(featureDim);

    /// <summary>
    /// BASED's linear attention on host spans: Q (batch, heads, length, featureDim), K (batch,
    /// kvHeads, length, featureDim), V (batch, kvHeads, length, valueDim), output (batch, heads,
    /// length, valueDim); causal, normalized. <paramref name="shape"/> is the mapped problem:
    /// Features = <see cref="Features(int)"/>(featureDim). A state continues a prefix (a call
    /// of length 1 is the recurrent step); <paramref name="chunkSize"/> is tuning only (null:
    /// the device's). Features are staged in a rented buffer; on an ILGPU device each stage
    /// is staged through the device and the call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device or the state is disposed.</exception>
    /// <exception cref="ArgumentException">featureDim is not positive or shape.Features is not
    /// 1 + featureDim + featureDim^2, a length disagrees with the shape (the message names the
    /// argument and the dimensions), the chunk size is not valid for the device, the state does
    /// not fit, or the output overlaps an input; thrown before anything is written.</exception>
    public static void Linear(ComputeDevice device, LinearAttentionShape shape, int featureDim,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output, LinearAttentionState? state = null, int? chunkSize = null)
    {
        CheckFeatures(shape, featureDim);
        MappedLinearAttention.Forward(device, shape, featureDim, default(TaylorExpMap),
            default(TaylorExpMap), query, key, value, output, true, state, chunkSize);
    }

    /// <summary>
    /// BASED's linear attention on views of the device's accelerator, enqueued on its stream.
    /// <paramref name="features"/> receives phi(Q) (batch, heads, length, features) followed
    /// by phi(K) (batch, kvHeads, length, features); empty: a buffer is allocated for the call
    /// and released once the device ran it. Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator; features has the wrong length or overlaps a
    /// tensor.</exception>
    public static void Linear(ComputeDevice device, LinearAttentionShape shape, int featureDim,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> features, LinearAttentionState? state = null,
        int? chunkSize = null)
    {
        CheckFeatures(shape, featureDim);
        MappedLinearAttention.Forward(device, shape, featureDim, default(TaylorExpMap),
            default(TaylorExpMap), query, key, value, output, features, true, state, chunkSize);
    }

    /// <summary>
    /// BASED's sliding-window softmax on host spans: o_t = sum_s softmax_s(q_t . k_s /
    /// sqrt(headDim)) v_s over t - window &lt; s &lt;= t. Q (batch, heads, seq, headDim), K
    /// (batch, kvHeads, seq, headDim), V (batch, kvHeads, seq, valueDim), output (batch, heads,
    /// seq, valueDim); self-attention (shape.SeqQ = shape.SeqK). On an ILGPU device the spans
    /// are staged through the device and the call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ArgumentException">window is not positive, SeqQ differs from SeqK, or
    /// as <see cref="FlashAttention"/> (a length disagrees with the shape, an output overlaps);
    /// thrown before anything is written.</exception>
    public static void Window(ComputeDevice device, AttentionShape shape, int window,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output)
    {
        var mask = WindowMask(shape, window);
        FlashAttention.Forward(device, shape, query, key, value, output, Span<float>.Empty,
            default(NoScore), mask, default(SoftmaxNormalizer), WindowOptions);
    }

    /// <summary>BASED's sliding-window softmax on views of the device's accelerator, enqueued
    /// on its stream. Otherwise as the span overload.</summary>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator.</exception>
    public static void Window(ComputeDevice device, AttentionShape shape, int window,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output)
    {
        var mask = WindowMask(shape, window);
        FlashAttention.Forward(device, shape, query, key, value, output, ArrayView<float>.Empty,
            default(NoScore), mask, default(SoftmaxNormalizer), WindowOptions);
    }

    // Self-attention: query row i sits at key position i.
    private static AttentionOptions WindowOptions => new() { QueryPosition = 0 };

    private static SlidingWindowMask WindowMask(AttentionShape shape, int window)
    {
        if (window <= 0)
            throw new ArgumentException($"window must be positive, got {window}.",
                nameof(window));
        shape.Validate(nameof(shape));
        if (shape.SeqQ != shape.SeqK)
            throw new ArgumentException($"SeqQ ({shape.SeqQ}) must equal SeqK ({shape.SeqK}): "
                + "the window mixer is self-attention.", nameof(shape));
        return SlidingWindowMask.Causal(window);
    }

    private static void CheckFeatures(LinearAttentionShape shape, int featureDim)
    {
        if (featureDim <= 0)
            throw new ArgumentException($"featureDim must be positive, got {featureDim}.",
                nameof(featureDim));
        if (featureDim > 4096)
            throw new ArgumentException($"featureDim is {featureDim}; expected at most 4096.",
                nameof(featureDim));
        if (shape.Features != Features(featureDim))
            throw new ArgumentException($"shape.Features is {shape.Features}; the Taylor map "
                + $"of featureDim {featureDim} makes 1 + {featureDim} + {featureDim}^2 = "
                + $"{Features(featureDim)}.", nameof(shape));
    }
}
