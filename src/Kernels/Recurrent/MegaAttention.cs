using System.Buffers;
using System.Numerics.Tensors;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Matmul;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Recurrent;

/// <summary>
/// One Mega layer, Mega-chunk (Ma et al., "Mega: Moving Average Equipped Gated Attention",
/// sections 3.1-3.4), causal, with every learned part an input (<see cref="MegaWeights"/>):
/// <code>
/// X'  = SiLU(EMA(X))                                  multi-dimensional damped EMA (eq. 2-3)
/// Z   = SiLU(X' W_z + b_z)                            shared representation (eq. 6)
/// Q   = kappa_q (.) Z + mu_q,  K = kappa_k (.) Z + mu_k                       (eq. 7)
/// V   = SiLU(X W_v + b_v)                                                     (eq. 8)
/// O   = softmax(Q K^T / sqrt(z) + b_rel) V   within chunks of c tokens, causal (eq. 9, 3.5)
/// gamma = SiLU(X' W_gamma + b_gamma),  phi = sigmoid(X' W_phi + b_phi)        (eq. 10-11)
/// H   = SiLU(X' W_h + (gamma (.) O) U_h + b_h)                                 (eq. 12)
/// Y   = phi (.) H + (1 - phi) (.) X                                            (eq. 13)
/// </code>
/// Readings: softmax attention with the simple relative position bias b_rel[k - q] (the
/// paper's f_softmax; Mega's later code also offers laplace and ReLU^2), scaled by 1/sqrt(z)
/// as the released code does; the EMA carries the code's residual omega (see
/// <see cref="MultiDimensionalEma"/>); no normalization (the code's pre/post-norm is a model
/// layer around this) and no dropout (inference). Chunking (Mega-chunk, section 3.5) splits
/// the sequence into chunks of c tokens and attends only within each (the last chunk may be
/// shorter), so a chunk of c &gt;= length is full Mega; the EMA runs over the whole sequence.
/// <para>
/// A composition of the library's kernels: the EMA (<see cref="MultiDimensionalEma"/>, its
/// own recurrence kernel), the projections (<see cref="Linear"/>) and exact attention
/// (<see cref="FlashAttention"/> with <see cref="RelativeBiasScore{TBias}"/> and
/// <c>And&lt;FixedDocumentMask, CausalMask&gt;</c>: a chunk is a fixed-length document)
/// each run on the call's device; the element-wise activations and gates between them
/// (O(length dim)) run on the host.
/// </para>
/// </summary>
public static class MegaAttention
{
    /// <summary>
    /// Y for X (batch, length, dim) into <paramref name="output"/> (batch, length, dim), with
    /// chunks of <paramref name="chunkSize"/> tokens (&gt;= 1; &gt;= length: full Mega).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> or
    /// <paramref name="weights"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the tensor and its dimensions), a weight is not finite, a damping factor is outside
    /// (0, 1], the bias table is shorter than 2 min(chunk, length) - 1, the chunk size is not
    /// positive, or output overlaps x; thrown before anything is written.</exception>
    public static unsafe void Forward(ComputeDevice device, MegaShape shape,
        ReadOnlySpan<float> x, MegaWeights weights, Span<float> output, int chunkSize)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(weights);
        ObjectDisposedException.ThrowIf(device.IsDisposed, device);
        shape.Validate(nameof(shape));
        if (chunkSize < 1)
            throw new ArgumentException($"chunkSize must be positive, got {chunkSize}.",
                nameof(chunkSize));
        var s = shape;
        string seq = $"batch {s.Batch} x length {s.Length} x dim {s.Dim}";
        MultiDimensionalEma.CheckLength(x.Length, s.SequenceLength, "x", seq);
        MultiDimensionalEma.CheckLength(output.Length, s.SequenceLength, "output", seq);
        weights.Validate(shape, chunkSize);
        if (output.Overlaps(x))
            throw new ArgumentException("output must not overlap x.", nameof(output));
        if (!device.IsHost && s.EmaDims > MultiDimensionalEma.DeviceMaxEmaDims)
            throw new ArgumentException($"EmaDims is {s.EmaDims}; an ILGPU device takes at most "
                + $"{MultiDimensionalEma.DeviceMaxEmaDims}.", nameof(shape));

        int rows = s.Rows, d = s.Dim, z = s.ZDim, v = s.HDim;
        long nd = (long)rows * d, nz = (long)rows * z, nv = (long)rows * v;
        // One rented block: X' (rows, dim), Z then Q (rows, z), K (rows, z), V (rows, v),
        // O (rows, v), gamma (rows, v), phi (rows, dim), H (rows, dim), U (rows, dim).
        long total = 4 * nd + 2 * nz + 3 * nv;
        float[] rented = ArrayPool<float>.Shared.Rent(checked((int)total));
        try
        {
            var all = rented.AsSpan(0, (int)total);
            var xp = Take(ref all, nd); var q = Take(ref all, nz); var k = Take(ref all, nz);
            var val = Take(ref all, nv); var o = Take(ref all, nv); var gamma = Take(ref all, nv);
            var phi = Take(ref all, nd); var hh = Take(ref all, nd); var hu = Take(ref all, nd);

            MultiDimensionalEma.Forward(device, s.Ema, x, weights.EmaAlpha, weights.EmaDelta,
                weights.EmaBeta, weights.EmaEta, weights.EmaOmega, xp);
            Silu(xp, hu); // X' = SiLU(EMA(X))

            Linear.Forward<float>(device, new(rows, v, d), x, weights.ValueWeight,
                weights.ValueBias, val);
            Silu(val, o);
            Linear.Forward<float>(device, new(rows, z, d), xp, weights.ZWeight, weights.ZBias,
                q);
            Silu(q, k);
            // Q and K from the shared Z (k holds scratch until here).
            var scale = weights.QkScale.AsSpan();
            var offset = weights.QkOffset.AsSpan();
            for (int r = 0; r < rows; r++)
            {
                var zr = q.Slice(r * z, z);
                var kr = k.Slice(r * z, z);
                TensorPrimitives.MultiplyAdd(zr, scale[z..], offset[z..], kr);
                TensorPrimitives.MultiplyAdd(zr, scale[..z], offset[..z], zr);
            }

            var attention = new AttentionShape(s.Batch, 1, 1, s.Length, s.Length, z, v);
            var mask = new And<FixedDocumentMask, CausalMask>(
                new FixedDocumentMask(Math.Min(chunkSize, s.Length)), default);
            var options = new AttentionOptions { Scale = 1f / MathF.Sqrt(z) };
            int radius = weights.BiasRadius;
            if (device.IsHost)
            {
                fixed (float* bias = weights.RelativeBias)
                {
                    var score = new RelativeBiasScore<HostTable<float>>(
                        HostTable<float>.FromPointer(bias, weights.RelativeBias.Length), 1,
                        radius);
                    FlashAttention.Forward(device, attention, q, k, val, o, default, score, mask,
                        default(SoftmaxNormalizer), options);
                }
            }
            else
            {
                using var table = device.Ilgpu.Allocate1D(weights.RelativeBias);
                var score = new RelativeBiasScore<DeviceTable<float>>(
                    new DeviceTable<float>(table.View), 1, radius);
                FlashAttention.Forward(device, attention, q, k, val, o, default, score, mask,
                    default(SoftmaxNormalizer), options);
            }

            Linear.Forward<float>(device, new(rows, v, d), xp, weights.GammaWeight,
                weights.GammaBias, gamma);
            Silu(gamma, val);
            TensorPrimitives.Multiply(gamma, o, o); // gamma (.) O
            Linear.Forward<float>(device, new(rows, d, d), xp, weights.PhiWeight,
                weights.PhiBias, phi);
            TensorPrimitives.Sigmoid(phi, phi);
            Linear.Forward<float>(device, new(rows, d, d), xp, weights.HxWeight,
                weights.HxBias, hh);
            Linear.Forward<float>(device, new(rows, d, v), o, weights.HuWeight, default, hu);
            TensorPrimitives.Add(hh, hu, hh);
            Silu(hh, hu);
            // Y = phi (.) H + (1 - phi) (.) X = X + phi (.) (H - X)
            TensorPrimitives.Subtract(hh, x, hh);
            TensorPrimitives.MultiplyAdd(phi, hh, x, output);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    private static Span<float> Take(ref Span<float> all, long n)
    {
        var part = all[..(int)n];
        all = all[(int)n..];
        return part;
    }

    /// <summary>a = a sigmoid(a), with <paramref name="scratch"/> of a's length.</summary>
    private static void Silu(Span<float> a, Span<float> scratch)
    {
        var sg = scratch[..a.Length];
        TensorPrimitives.Sigmoid(a, sg);
        TensorPrimitives.Multiply(a, sg, a);
    }
}
