using System.Buffers;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// The size of one induced-set-attention call: Q (batch, heads, seqQ, headDim), K (batch,
/// kvHeads, seqK, headDim), V (batch, kvHeads, seqK, headDim), inducing points I (batch,
/// heads, inducing, headDim), output (batch, heads, seqQ, headDim), the induced set H (batch,
/// heads, inducing, headDim); dense row-major. The value dim is the head dim because H serves
/// as the keys of stage 2. heads must be a multiple of kvHeads (GQA in stage 1).
/// </summary>
public readonly record struct InducedSetAttentionShape(
    int Batch, int Heads, int KvHeads, int SeqQ, int SeqK, int Inducing, int HeadDim)
{
    /// <summary>batch * heads * seqQ * headDim</summary>
    public long QueryLength => (long)Batch * Heads * SeqQ * HeadDim;
    /// <summary>batch * kvHeads * seqK * headDim: K, and V too</summary>
    public long KeyLength => (long)Batch * KvHeads * SeqK * HeadDim;
    /// <summary>batch * heads * inducing * headDim: I, and H too</summary>
    public long InducingLength => (long)Batch * Heads * Inducing * HeadDim;
    /// <summary>batch * heads * seqQ * headDim</summary>
    public long OutputLength => QueryLength;

    /// <summary>Stage 1, the inducing points over the inputs: H = softmax(I K^T scale) V.</summary>
    public AttentionShape InducingStage =>
        new(Batch, Heads, KvHeads, Inducing, SeqK, HeadDim, HeadDim);

    /// <summary>Stage 2, the queries over H as keys and values: O = softmax(Q H^T scale) H.
    /// </summary>
    public AttentionShape QueryStage => new(Batch, Heads, Heads, SeqQ, Inducing, HeadDim, HeadDim);

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not
    /// valid.</summary>
    public void Validate(string paramName = "shape")
    {
        Positive(Batch, nameof(Batch), paramName);
        Positive(Heads, nameof(Heads), paramName);
        Positive(KvHeads, nameof(KvHeads), paramName);
        Positive(SeqQ, nameof(SeqQ), paramName);
        Positive(SeqK, nameof(SeqK), paramName);
        Positive(Inducing, nameof(Inducing), paramName);
        Positive(HeadDim, nameof(HeadDim), paramName);
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
        $"B={Batch} Hq={Heads} Hkv={KvHeads} Nq={SeqQ} Nk={SeqK} M={Inducing} D={HeadDim}";
}

/// <summary>
/// The attention of an induced set attention block (ISAB; Lee et al., "Set Transformer"):
/// m inducing points attend to the n inputs, H = softmax(I K^T * scale) V, then the queries
/// attend to H as keys and values, O = softmax(Q H^T * scale) H: O(n * m * d) instead of
/// O(n^2 * d), and no seqQ x seqK weight exists. H does not depend on the order of the inputs
/// (K and V rows permuted together), and O's rows follow Q's, so the block is permutation
/// equivariant. Both stages are exact softmax attention (<see cref="FlashAttention"/> with no
/// score modifier and no mask), on every device.
/// <para>
/// The MABs' projections (of I, X and H to queries, keys and values), their feed-forward
/// layers, residuals and LayerNorms are model layers around this call; here H is used as it
/// comes, so the value dim equals the head dim. Pooling by multihead attention (PMA) is
/// plain attention of k seed vectors S over the inputs, Attention(S, K, V):
/// <see cref="FlashAttention"/> with S as the queries, nothing of its own. The scale is
/// <see cref="AttentionOptions.Scale"/> (default 1/sqrt(headDim)) for both stages; the options'
/// tuning applies to both; tensors are dense (no layout, no query position).
/// </para>
/// </summary>
public static class InducedSetAttention
{
    /// <summary>
    /// ISAB attention on host spans, on <paramref name="device"/>: the host SIMD kernels, or an
    /// ILGPU device (each stage staged through the device, waited for). H lives in a buffer
    /// rented from <see cref="ArrayPool{T}"/> for the call.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and its dimensions), a dimension is not positive, the head dim exceeds the
    /// ILGPU kernels' limit, an option is not valid, or the output overlaps an input; thrown
    /// before anything runs.</exception>
    public static void Forward(ComputeDevice device, InducedSetAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> inducing, Span<float> output, AttentionOptions options = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        Validate(device, shape, query.Length, key.Length, value.Length, inducing.Length,
            output.Length, options);
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(inducing))
            throw new ArgumentException(
                "output must not overlap query, key, value or inducing.", nameof(output));
        if (shape.InducingLength > Array.MaxLength)
            throw new ArgumentException($"H would have {shape.InducingLength} elements; a host "
                + $"buffer holds at most {Array.MaxLength}.", nameof(shape));
        int length = (int)shape.InducingLength;
        float[] rented = ArrayPool<float>.Shared.Rent(length);
        try
        {
            var induced = rented.AsSpan(0, length); // H: (batch, heads, inducing, headDim)
            FlashAttention.Forward(device, shape.InducingStage, inducing, key, value, induced,
                Span<float>.Empty, default(NoScore), default(NoMask), default(SoftmaxNormalizer),
                options);
            FlashAttention.Forward(device, shape.QueryStage, query, induced, induced, output,
                Span<float>.Empty, default(NoScore), default(NoMask), default(SoftmaxNormalizer),
                options);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// ISAB attention on views of <paramref name="device"/>'s accelerator, enqueued on its
    /// stream. <paramref name="induced"/> receives H (batch, heads, inducing, headDim); it may
    /// be empty, and then a buffer is allocated for the call and released after the call waits
    /// for the device (pass one to keep the call asynchronous and allocation-free).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator; or induced has the wrong length or overlaps
    /// another tensor.</exception>
    public static void Forward(ComputeDevice device, InducedSetAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> inducing, ArrayView<float> output, ArrayView<float> induced,
        AttentionOptions options = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        Validate(device, shape, query.Length, key.Length, value.Length, inducing.Length,
            output.Length, options);
        if (induced.Length != 0)
            AttentionShape.CheckLength(induced.Length, shape.InducingLength, nameof(induced),
                $"batch {shape.Batch} x heads {shape.Heads} x inducing {shape.Inducing} x "
                + $"headDim {shape.HeadDim} (or empty)");
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(inducing, nameof(inducing));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(induced, nameof(induced));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value)
            || Overlaps(output, inducing) || Overlaps(output, induced))
            throw new ArgumentException(
                "output must not overlap query, key, value, inducing or induced.",
                nameof(output));
        if (Overlaps(induced, query) || Overlaps(induced, key) || Overlaps(induced, value)
            || Overlaps(induced, inducing))
            throw new ArgumentException(
                "induced must not overlap query, key, value or inducing.", nameof(induced));
        MemoryBuffer1D<float, Stride1D.Dense>? owned = null;
        if (induced.Length == 0)
        {
            owned = device.Ilgpu.Allocate1D<float>(shape.InducingLength);
            induced = owned.View;
        }
        try
        {
            FlashAttention.Forward(device, shape.InducingStage, inducing, key, value, induced,
                ArrayView<float>.Empty, default(NoScore), default(NoMask),
                default(SoftmaxNormalizer), options);
            FlashAttention.Forward(device, shape.QueryStage, query, induced, induced, output,
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

    /// <summary>Every length, option and device limit of a call, before any stage runs.</summary>
    private static void Validate(ComputeDevice device, InducedSetAttentionShape shape,
        long queryLength, long keyLength, long valueLength, long inducingLength,
        long outputLength, AttentionOptions options)
    {
        shape.Validate(nameof(shape));
        var s = shape;
        AttentionShape.CheckLength(queryLength, s.QueryLength, "query",
            $"batch {s.Batch} x heads {s.Heads} x seqQ {s.SeqQ} x headDim {s.HeadDim}");
        AttentionShape.CheckLength(keyLength, s.KeyLength, "key",
            $"batch {s.Batch} x kvHeads {s.KvHeads} x seqK {s.SeqK} x headDim {s.HeadDim}");
        AttentionShape.CheckLength(valueLength, s.KeyLength, "value",
            $"batch {s.Batch} x kvHeads {s.KvHeads} x seqK {s.SeqK} x headDim {s.HeadDim} "
            + "(H is stage 2's keys and values, so valueDim = headDim)");
        AttentionShape.CheckLength(inducingLength, s.InducingLength, "inducing",
            $"batch {s.Batch} x heads {s.Heads} x inducing {s.Inducing} x headDim {s.HeadDim}");
        AttentionShape.CheckLength(outputLength, s.OutputLength, "output",
            $"batch {s.Batch} x heads {s.Heads} x seqQ {s.SeqQ} x headDim {s.HeadDim}");
        if (options.Layout != default || options.QueryPosition is not null)
            throw new ArgumentException(
                "Induced set attention takes dense tensors: no Layout and no QueryPosition.",
                nameof(options));
        // The stages' own checks of the options (scale, tuning), run here once, up front.
        FlashAttention.ValidateCall(s.InducingStage, s.InducingLength, s.KeyLength, s.KeyLength,
            s.InducingLength, 0, options);
        if (!device.IsHost && s.HeadDim > FlashAttention.MaxIlgpuHeadDim)
            throw new ArgumentException(
                $"HeadDim ({s.HeadDim}) must be <= {FlashAttention.MaxIlgpuHeadDim} on ILGPU "
                + "devices.", nameof(shape));
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
