using System.Buffers;
using System.Numerics.Tensors;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Recurrent;

/// <summary>
/// The size of one Titans MAG call over the extended sequence x~ = [p_1..p_Np] || x of
/// <see cref="Length"/> = Np + n tokens: attention q, k (batch, heads, length, headDim) and v
/// (batch, heads, length, valueDim); memory q, k (batch, heads, length, keyDim) and v
/// (batch, heads, length, valueDim); gates (batch, heads, length); output (batch, heads,
/// length, valueDim). <see cref="PersistentTokens"/> = Np &gt;= 0 leading tokens every query
/// sees; <see cref="Window"/> &gt;= 1 keys of the causal sliding window (the query's own
/// included).
/// </summary>
public readonly record struct TitansMagShape(int Batch, int Heads, int Length, int HeadDim,
    int KeyDim, int ValueDim, int PersistentTokens, int Window)
{
    /// <summary>The attention branch's shape.</summary>
    public AttentionShape Attention => new(Batch, Heads, Heads, Length, Length, HeadDim,
        ValueDim);

    /// <summary>The memory branch's shape.</summary>
    public TitansShape Memory => new(Batch, Heads, Length, KeyDim, ValueDim);

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not
    /// valid.</summary>
    public void Validate(string paramName = "shape")
    {
        Attention.Validate(paramName);
        Memory.Validate(paramName);
        if (PersistentTokens < 0 || PersistentTokens > Length)
            throw new ArgumentException($"PersistentTokens is {PersistentTokens}; expected "
                + $"0..Length {Length}.", paramName);
        if (Window < 1)
            throw new ArgumentException($"Window must be positive, got {Window}.", paramName);
    }
}

/// <summary>
/// Titans' memory as a gate, MAG (Behrouz et al., section 4.2, eq. 26-28): over the extended
/// sequence x~ = [p_1..p_Np] || x (the learned persistent tokens first),
/// <code>
/// y = SW-Attn*(x~)      causal sliding-window attention that also sees the Np persistent
///                       tokens (SinkWindowMask(Np, window): the paper's MAG mask)
/// m = M(x~)             the neural memory's reads (TitansMemory, the linear memory)
/// o = y (.) sigmoid(m)
/// </code>
/// Reading: the paper defines o = y (x) M(x~) as "normalize the outputs y and M(x~) using
/// learnable vector-valued weights, followed by a non-linearity"; we take the gate as
/// y (.) sigmoid(m), the learned normalizations and the projections being model layers
/// before this call (their outputs are the q, k, v inputs). With memory that reads 0
/// (theta = 0, zero state) o = y / 2: the windowed attention alone, up to the constant gate.
/// Rows of the persistent tokens are computed too; the model drops them.
/// A composition: <see cref="FlashAttention"/> and <see cref="TitansMemory"/> on the device,
/// the gate on the host.
/// </summary>
public static class TitansGatedAttention
{
    /// <summary>o = SW-Attn*(x~) (.) sigmoid(M(x~)) on host spans, the memory in chunks of
    /// <paramref name="memoryChunk"/> tokens from a zero state; the attention scale is
    /// 1/sqrt(headDim).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and its dimensions), a gate is not valid (as
    /// <see cref="TitansMemory"/>), the chunk is not positive, or output overlaps an input;
    /// thrown before anything is written.</exception>
    public static void Forward(ComputeDevice device, TitansMagShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> memoryQuery, ReadOnlySpan<float> memoryKey,
        ReadOnlySpan<float> memoryValue, ReadOnlySpan<float> theta, ReadOnlySpan<float> eta,
        ReadOnlySpan<float> alpha, Span<float> output, int memoryChunk)
    {
        ArgumentNullException.ThrowIfNull(device);
        ObjectDisposedException.ThrowIf(device.IsDisposed, device);
        shape.Validate(nameof(shape));
        var a = shape.Attention;
        string bhn = $"batch {a.Batch} x heads {a.Heads} x length {a.SeqQ}";
        MultiDimensionalEma.CheckLength(query.Length, a.QueryLength, "query",
            $"{bhn} x headDim {a.HeadDim}");
        MultiDimensionalEma.CheckLength(key.Length, a.KeyLength, "key",
            $"{bhn} x headDim {a.HeadDim}");
        MultiDimensionalEma.CheckLength(value.Length, a.ValueLength, "value",
            $"{bhn} x valueDim {a.ValueDim}");
        MultiDimensionalEma.CheckLength(output.Length, a.OutputLength, "output",
            $"{bhn} x valueDim {a.ValueDim}");
        var ms = shape.Memory;
        MultiDimensionalEma.CheckLength(memoryQuery.Length, ms.KeyLength, nameof(memoryQuery),
            $"{bhn} x keyDim {ms.KeyDim}");
        MultiDimensionalEma.CheckLength(memoryKey.Length, ms.KeyLength, nameof(memoryKey),
            $"{bhn} x keyDim {ms.KeyDim}");
        MultiDimensionalEma.CheckLength(memoryValue.Length, ms.ValueLength,
            nameof(memoryValue), $"{bhn} x valueDim {ms.ValueDim}");
        if (memoryChunk < 1)
            throw new ArgumentException($"memoryChunk must be positive, got {memoryChunk}.",
                nameof(memoryChunk));
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(memoryQuery) || output.Overlaps(memoryKey)
            || output.Overlaps(memoryValue) || output.Overlaps(theta) || output.Overlaps(eta)
            || output.Overlaps(alpha))
            throw new ArgumentException("output must not overlap an input.", nameof(output));
        var mask = new SinkWindowMask(shape.PersistentTokens, shape.Window);
        long n = a.OutputLength;
        float[] rented = ArrayPool<float>.Shared.Rent(checked((int)(2 * n)));
        try
        {
            var y = rented.AsSpan(0, (int)n); // (batch, heads, length, valueDim)
            var m = rented.AsSpan((int)n, (int)n);
            // The memory validates its own arguments (memory q/k/v, gates, chunk) first,
            // before the attention runs; both write only scratch, the output comes last.
            TitansMemory.Forward(device, shape.Memory, memoryQuery, memoryKey, memoryValue,
                theta, eta, alpha, m, memoryChunk);
            FlashAttention.Forward(device, a, query, key, value, y, default, default(NoScore),
                mask, default(SoftmaxNormalizer));
            TensorPrimitives.Sigmoid(m, m);
            TensorPrimitives.Multiply(y, m, output);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }
}
