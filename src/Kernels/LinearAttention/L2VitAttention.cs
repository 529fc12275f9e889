using System.Buffers;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;
using static Managed.Kernels.LinearAttention.LinearMechanismChecks;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// The learned weights of L2ViT's local concentration module (LCM) for C = heads x dim channels,
/// channel (h, c) the c-th value element of head h: two depth-wise k x k convolutions
/// <see cref="Conv1"/>, <see cref="Conv2"/> (heads, dim, k, k) with biases
/// <see cref="Bias1"/>, <see cref="Bias2"/> (heads, dim), and the batch norm between them in
/// inference form, folded to a per-channel <see cref="Scale"/> and <see cref="Shift"/> (heads,
/// dim): gamma / sqrt(var + eps) and beta - mean gamma / sqrt(var + eps).
/// </summary>
/// <param name="Kernel">k, odd (the paper's 7).</param>
/// <param name="Conv1">First depth-wise kernel (heads, dim, k, k).</param>
/// <param name="Bias1">First bias (heads, dim).</param>
/// <param name="Scale">Batch-norm scale (heads, dim).</param>
/// <param name="Shift">Batch-norm shift (heads, dim).</param>
/// <param name="Conv2">Second depth-wise kernel (heads, dim, k, k).</param>
/// <param name="Bias2">Second bias (heads, dim).</param>
public sealed record L2VitLcmWeights(int Kernel, float[] Conv1, float[] Bias1, float[] Scale,
    float[] Shift, float[] Conv2, float[] Bias2);

/// <summary>
/// L2ViT (Zheng, "The Linear Attention Resurrection in Vision Transformer"): blocks that
/// alternate an enhanced linear global attention (LGA) and a local window attention (LWA).
/// The two token mixers, as the authors' released code (ChuanyangZheng/L2ViT,
/// classification/models/l2vit.py) computes them; read, not copied:
/// <list type="bullet">
/// <item><c>Global</c>, LGA's linear attention with the ReLU kernel
/// (<see cref="ReluMap"/>), a learned per-head temperature tau_h (initialized d^(-1/2)) on the
/// output and the denominator clamped from below (their clamp(min = 1e2), "makes training
/// stable"): o_i = tau_h phi(q_i) S / max(phi(q_i) . z, floor), S = sum_j phi(k_j) v_j^T,
/// z = sum_j phi(k_j).</item>
/// <item><see cref="LocalConcentration"/>, the local concentration module on an h x w token
/// grid: LCM(x) = conv2(BN(GELU(conv1(x)))), conv1 and conv2 depth-wise k x k (the paper's
/// 7 x 7) with bias, BN in inference form, GELU exact. In the LGA block it is a second residual
/// branch, x + LCM(norm3(x + attention)); <see cref="GlobalWithLcm"/> composes the two with
/// the residual stream, the norms and projections taken as identity: A + LCM(A), A the
/// attention output (a reading that keeps the module's convolutions on the attention output,
/// which is what it concentrates).</item>
/// <item><see cref="Window"/>, LWA: exact softmax attention inside non-overlapping
/// window x window blocks of the grid (Swin's W-MSA without shift), on
/// <see cref="FlashAttention"/> with a <see cref="HaloMask"/> of halo 0. Reading: the code
/// zero-pads the grid to a multiple of the window and lets the padded tokens take part in the
/// softmax; here border windows are truncated to the grid (identical when height and width
/// are multiples of the window).</item>
/// </list>
/// Learned parts (projections, temperatures, LCM weights) are inputs; Q and K of the global
/// mixer enter mapped (phi = ReLU). Tensors are head-major: (batch, heads, length, dim) with
/// length = height x width tokens, row-major.
/// </summary>
public static class L2VitAttention
{
    /// <summary>The authors' floor of the global denominator, 1e2.</summary>
    public const float DefaultFloor = 100f;

    /// <summary>
    /// LGA's linear attention on host spans: o_i = tau_h phi(q_i) S / max(phi(q_i) . z, floor)
    /// with phi(Q) (batch, heads, length, features), phi(K) (batch, kvHeads, length, features),
    /// V (batch, kvHeads, length, valueDim), <paramref name="temperature"/> tau (heads),
    /// output (batch, heads, length, valueDim). On an ILGPU device the tensors are copied to
    /// buffers allocated for the call and the call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and the dimension), the floor is negative or not finite, or the output
    /// overlaps an input; thrown before anything is written.</exception>
    public static void Global(ComputeDevice device, LinearAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> temperature, Span<float> output, float floor = DefaultFloor)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        CheckGlobal(shape, query, key, value, temperature, output, floor);
        if (!device.IsHost)
        {
            RunOnDevice(device, shape, query, key, value, temperature, output, floor, 0, 0,
                null);
            return;
        }
        GlobalHost(device, shape, query, key, value, temperature, output, floor);
    }

    /// <summary>
    /// LGA's linear attention on views of the device's accelerator, enqueued on its stream:
    /// <paramref name="temperature"/> (heads) on the device; <paramref name="scratch"/> receives
    /// z (batch, kvHeads, features) and may be empty (then a buffer is allocated for the call
    /// and released after the call waits for the device). Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator; scratch has the wrong length or overlaps a
    /// tensor.</exception>
    public static void Global(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> temperature, ArrayView<float> output, ArrayView<float> scratch,
        float floor = DefaultFloor)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        CheckTensors(shape, shape.Features, query.Length, key.Length, value.Length,
            output.Length);
        CheckLength(temperature.Length, shape.Heads, nameof(temperature),
            $"heads {shape.Heads}");
        if (!(floor >= 0f) || !float.IsFinite(floor))
            throw new ArgumentException($"floor must be finite and not negative, got {floor}.",
                nameof(floor));
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(temperature, nameof(temperature));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(scratch, nameof(scratch));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value)
            || Overlaps(output, temperature) || Overlaps(output, scratch))
            throw new ArgumentException(
                "output must not overlap query, key, value, temperature or scratch.",
                nameof(output));
        long zLength = (long)shape.Batch * shape.KvHeads * shape.Features;
        CheckScratch(scratch, zLength, nameof(scratch), "batch x kvHeads x features", query,
            key, value, temperature);
        MemoryBuffer1D<float, Stride1D.Dense>? owned = null;
        if (scratch.Length == 0)
        {
            owned = device.Ilgpu.Allocate1D<float>(zLength);
            scratch = owned.View;
        }
        try
        {
            GlobalDevice(device, shape, query, key, value, temperature, output, scratch, floor);
        }
        finally
        {
            if (owned is not null)
            {
                // The steps read the buffer in stream order: free it only once they ran.
                device.Ilgpu.Synchronize();
                owned.Dispose();
            }
        }
    }

    private static void GlobalDevice(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> temperature, ArrayView<float> output, ArrayView<float> z, float floor)
    {
        int f = shape.Features, dv = shape.ValueDim, n = shape.Length;
        ChunkedLinearAttention.Forward(device, shape, query, key, value,
            ReadOnlySpan<float>.Empty, output, new LinearAttentionOptions());
        LinearMechanismKernel.Run(device, new ColumnSumStep(n, f, 1f), z, key);
        LinearMechanismKernel.Run(device,
            new ClampedNormalizeStep(n, f, dv, shape.GroupSize, shape.Heads, floor), output,
            output, query, z, temperature);
    }

    /// <summary>
    /// LGA's two mixers composed: output = A + LCM(A), A = <c>Global</c>'s output, the
    /// LCM over the <paramref name="height"/> x <paramref name="width"/> grid of the length
    /// tokens with channels (head, value element). Otherwise as <c>Global</c>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> or
    /// <paramref name="lcm"/> is null.</exception>
    /// <exception cref="ArgumentException">As <c>Global</c>; height x width is not the
    /// length; a weight has the wrong length or the kernel is not odd and positive.</exception>
    public static void GlobalWithLcm(ComputeDevice device, LinearAttentionShape shape,
        int height, int width, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, ReadOnlySpan<float> temperature, L2VitLcmWeights lcm,
        Span<float> output, float floor = DefaultFloor)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(lcm);
        using var lease = device.Use();
        CheckGlobal(shape, query, key, value, temperature, output, floor);
        CheckGrid(shape.Length, height, width);
        CheckLcm(lcm, shape.Heads, shape.ValueDim);
        if (!device.IsHost)
        {
            RunOnDevice(device, shape, query, key, value, temperature, output, floor, height,
                width, lcm);
            return;
        }
        float[] rented = ArrayPool<float>.Shared.Rent(2 * output.Length);
        try
        {
            var attention = rented.AsSpan(0, output.Length); // A (batch, heads, length, valueDim)
            var hidden = rented.AsSpan(output.Length, output.Length);
            GlobalHost(device, shape, query, key, value, temperature, attention, floor);
            LcmHost(shape.Batch * shape.Heads, shape.Heads, height, width, shape.ValueDim,
                attention, lcm, hidden, attention, output);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// The local concentration module alone on host spans: output = conv2(BN(GELU(conv1(x))))
    /// for x (batch, heads, height x width, dim), channels (head, element), zero padding.
    /// On an ILGPU device the tensors are copied to buffers allocated for the call and the
    /// call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> or
    /// <paramref name="lcm"/> is null.</exception>
    /// <exception cref="ArgumentException">A size is not positive, a length or weight
    /// disagrees with the sizes, the kernel is not odd, or the output overlaps the input;
    /// thrown before anything is written.</exception>
    public static void LocalConcentration(ComputeDevice device, int batch, int heads,
        int height, int width, int dim, ReadOnlySpan<float> input, L2VitLcmWeights lcm,
        Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(lcm);
        using var lease = device.Use();
        Positive(batch, nameof(batch));
        Positive(heads, nameof(heads));
        Positive(height, nameof(height));
        Positive(width, nameof(width));
        Positive(dim, nameof(dim));
        long total = (long)batch * heads * height * width * dim;
        if (total > int.MaxValue)
            throw new ArgumentException($"{total} elements exceed {int.MaxValue}.",
                nameof(input));
        string layout = $"batch {batch} x heads {heads} x height {height} x width {width} x "
            + $"dim {dim}";
        CheckLength(input.Length, total, nameof(input), layout);
        CheckLength(output.Length, total, nameof(output), layout);
        CheckLcm(lcm, heads, dim);
        if (output.Overlaps(input))
            throw new ArgumentException("output must not overlap input.", nameof(output));
        int items = batch * heads, n = height * width;
        if (!device.IsHost)
        {
            var acc = device.Ilgpu;
            using var dx = acc.Allocate1D<float>(total);
            using var dout = acc.Allocate1D<float>(total);
            using var hidden = acc.Allocate1D<float>(total);
            using var weights = Upload(acc, lcm);
            dx.View.AsContiguous().CopyFromCPU(input);
            LcmDevice(device, items, heads, height, width, dim, dx.View, weights, hidden.View,
                default, dout.View, lcm.Kernel);
            dout.View.AsContiguous().CopyToCPU(output);
            acc.Synchronize();
            return;
        }
        float[] rented = ArrayPool<float>.Shared.Rent((int)total);
        try
        {
            LcmHost(items, heads, height, width, dim, input, lcm, rented.AsSpan(0, (int)total),
                ReadOnlySpan<float>.Empty, output);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// LWA: exact softmax attention within non-overlapping <paramref name="window"/> x
    /// <paramref name="window"/> blocks of the <paramref name="height"/> x
    /// <paramref name="width"/> token grid (border blocks truncated), on
    /// <see cref="FlashAttention"/>: Q (batch, heads, length, headDim), K (batch, kvHeads,
    /// length, headDim), V (batch, kvHeads, length, valueDim), output (batch, heads, length,
    /// valueDim), length = height x width; <paramref name="scale"/> null: 1 / sqrt(headDim).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ArgumentException">A size is not positive, height x width is not the
    /// length, a length disagrees with the shape, or the output overlaps an input; thrown
    /// before anything is written.</exception>
    public static void Window(ComputeDevice device, AttentionShape shape, int height,
        int width, int window, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, Span<float> output, float? scale = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        Positive(window, nameof(window));
        if (shape.SeqQ != shape.SeqK)
            throw new ArgumentException($"Window attention is self attention: SeqQ "
                + $"{shape.SeqQ} must equal SeqK {shape.SeqK}.", nameof(shape));
        CheckGrid(shape.SeqQ, height, width);
        FlashAttention.Forward(device, shape, query, key, value, output, Span<float>.Empty,
            default(NoScore), new HaloMask(height, width, window, 0),
            default(SoftmaxNormalizer), new AttentionOptions { Scale = scale });
    }

    private static void CheckGlobal(LinearAttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, ReadOnlySpan<float> temperature,
        Span<float> output, float floor)
    {
        CheckTensors(shape, shape.Features, query.Length, key.Length, value.Length,
            output.Length);
        CheckLength(temperature.Length, shape.Heads, nameof(temperature),
            $"heads {shape.Heads}");
        if (!(floor >= 0f) || !float.IsFinite(floor))
            throw new ArgumentException($"floor must be finite and not negative, got {floor}.",
                nameof(floor));
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(temperature))
            throw new ArgumentException(
                "output must not overlap query, key, value or temperature.", nameof(output));
    }

    private static void CheckGrid(int length, int height, int width)
    {
        Positive(height, nameof(height));
        Positive(width, nameof(width));
        if ((long)height * width != length)
            throw new ArgumentException($"height {height} x width {width} = "
                + $"{(long)height * width} tokens; the length is {length}.", nameof(height));
    }

    private static void CheckLcm(L2VitLcmWeights lcm, int heads, int dim)
    {
        int k = lcm.Kernel;
        if (k < 1 || k % 2 == 0)
            throw new ArgumentException($"LCM kernel is {k}; expected an odd size >= 1.",
                nameof(lcm));
        long conv = (long)heads * dim * k * k, channels = (long)heads * dim;
        string convLayout = $"heads {heads} x dim {dim} x {k} x {k}",
            chLayout = $"heads {heads} x dim {dim}";
        CheckNamed(lcm.Conv1, conv, "Conv1", convLayout);
        CheckNamed(lcm.Conv2, conv, "Conv2", convLayout);
        CheckNamed(lcm.Bias1, channels, "Bias1", chLayout);
        CheckNamed(lcm.Bias2, channels, "Bias2", chLayout);
        CheckNamed(lcm.Scale, channels, "Scale", chLayout);
        CheckNamed(lcm.Shift, channels, "Shift", chLayout);
    }

    private static void CheckNamed(float[] weights, long expected, string part, string layout)
    {
        if (weights is null || weights.Length != expected)
            throw new ArgumentException($"lcm.{part} has {weights?.Length ?? 0} elements; "
                + $"expected {expected} = {layout}.", "lcm");
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} must be positive, got {value}.",
            name);
    }

    private static void GlobalHost(ComputeDevice device, LinearAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> temperature, Span<float> output, float floor)
    {
        ChunkedLinearAttention.Forward(device, shape, query, key, value,
            ReadOnlySpan<float>.Empty, output, new LinearAttentionOptions());
        int items = shape.Batch * shape.KvHeads, f = shape.Features, dv = shape.ValueDim,
            n = shape.Length, group = shape.GroupSize;
        float[] rented = ArrayPool<float>.Shared.Rent(items * f);
        try
        {
            var z = rented.AsSpan(0, items * f); // (batch, kvHeads, features)
            MalaAttention.ColumnMeans(key, z, items, n, f);
            for (int i = 0; i < z.Length; i++) z[i] *= n;
            int rows = shape.Batch * shape.Heads * n;
            for (int r = 0; r < rows; r++)
            {
                int it = r / n / group, head = r / n % shape.Heads;
                var qRow = query.Slice(r * f, f);
                float dot = 0f;
                for (int x = 0; x < f; x++) dot += qRow[x] * z[it * f + x];
                float factor = temperature[head] / MathF.Max(dot, floor);
                var oRow = output.Slice(r * dv, dv);
                for (int c = 0; c < dv; c++) oRow[c] *= factor;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>output = [addend +] conv2(affine(gelu(conv1(x)))) with hidden as scratch.
    /// </summary>
    private static void LcmHost(int items, int heads, int height, int width, int dim,
        ReadOnlySpan<float> x, L2VitLcmWeights lcm, Span<float> hidden,
        ReadOnlySpan<float> addend, Span<float> output)
    {
        int n = height * width, k = lcm.Kernel;
        VisionMath.DepthwiseConv(x, lcm.Conv1, lcm.Bias1, ReadOnlySpan<float>.Empty, hidden,
            items, n, dim, height, width, k, 0, 1, heads, false);
        for (int e = 0; e < hidden.Length; e++)
        {
            int ch = e / dim / n % heads * dim + e % dim;
            hidden[e] = VisionMath.Gelu(hidden[e]) * lcm.Scale[ch] + lcm.Shift[ch];
        }
        VisionMath.DepthwiseConv(hidden, lcm.Conv2, lcm.Bias2, addend, output, items, n, dim,
            height, width, k, 0, 1, heads, false);
    }

    /// <summary>The LCM weights in one device buffer: Conv1, Bias1, Scale, Shift, Conv2, Bias2.
    /// </summary>
    private static MemoryBuffer1D<float, Stride1D.Dense> Upload(Accelerator acc,
        L2VitLcmWeights lcm)
    {
        float[] all = [.. lcm.Conv1, .. lcm.Bias1, .. lcm.Scale, .. lcm.Shift, .. lcm.Conv2,
            .. lcm.Bias2];
        var buffer = acc.Allocate1D<float>(all.Length);
        buffer.View.AsContiguous().CopyFromCPU(all);
        return buffer;
    }

    private static void LcmDevice(ComputeDevice device, int items, int heads, int height,
        int width, int dim, ArrayView<float> x, MemoryBuffer1D<float, Stride1D.Dense> weights,
        ArrayView<float> hidden, ArrayView<float> addend, ArrayView<float> output, int k)
    {
        long conv = (long)heads * dim * k * k, ch = (long)heads * dim;
        var w = weights.View;
        var conv1 = w.SubView(0, conv);
        var bias1 = w.SubView(conv, ch);
        var scale = w.SubView(conv + ch, ch);
        var shift = w.SubView(conv + 2 * ch, ch);
        var conv2 = w.SubView(conv + 3 * ch, conv);
        var bias2 = w.SubView(2 * conv + 3 * ch, ch);
        int n = height * width;
        LinearMechanismKernel.Run(device,
            new DepthwiseConvStep(n, dim, height, width, k, 0, 1, heads, DepthwiseConvStep.HasBias),
            hidden, x, conv1, bias1);
        LinearMechanismKernel.Run(device, new GeluAffineStep(n, dim, heads), hidden, hidden,
            scale, shift);
        LinearMechanismKernel.Run(device,
            new DepthwiseConvStep(n, dim, height, width, k, 0, 1, heads,
                DepthwiseConvStep.HasBias
                | (addend.Length > 0 ? DepthwiseConvStep.HasAddend : 0)),
            output, hidden, conv2, bias2, addend);
    }

    private static void RunOnDevice(ComputeDevice device, LinearAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> temperature, Span<float> output, float floor, int height,
        int width, L2VitLcmWeights? lcm)
    {
        var acc = device.Ilgpu;
        long items = (long)shape.Batch * shape.KvHeads;
        int f = shape.Features, dv = shape.ValueDim, n = shape.Length;
        using var dq = acc.Allocate1D<float>(query.Length);
        using var dk = acc.Allocate1D<float>(key.Length);
        using var dvv = acc.Allocate1D<float>(value.Length);
        using var dt = acc.Allocate1D<float>(temperature.Length);
        using var attention = acc.Allocate1D<float>(output.Length);
        using var z = acc.Allocate1D<float>(items * f); // (batch, kvHeads, features)
        dq.View.AsContiguous().CopyFromCPU(query);
        dk.View.AsContiguous().CopyFromCPU(key);
        dvv.View.AsContiguous().CopyFromCPU(value);
        dt.View.AsContiguous().CopyFromCPU(temperature);
        GlobalDevice(device, shape, dq.View, dk.View, dvv.View, dt.View, attention.View,
            z.View, floor);
        if (lcm is null)
        {
            attention.View.AsContiguous().CopyToCPU(output);
            acc.Synchronize();
            return;
        }
        using var hidden = acc.Allocate1D<float>(output.Length);
        using var dout = acc.Allocate1D<float>(output.Length);
        using var weights = Upload(acc, lcm);
        LcmDevice(device, shape.Batch * shape.Heads, shape.Heads, height, width, dv,
            attention.View, weights, hidden.View, attention.View, dout.View, lcm.Kernel);
        dout.View.AsContiguous().CopyToCPU(output);
        acc.Synchronize();
    }
}
