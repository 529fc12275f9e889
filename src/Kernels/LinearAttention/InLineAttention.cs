using System.Buffers;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using static Managed.Kernels.LinearAttention.LinearMechanismChecks;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// InLine attention, the injective linear attention of Han et al., "Bridging the Divide:
/// Reconsidering Softmax and Linear Attention": division-normalized linear attention gives q
/// and c q the same weights (not injective); InLine normalizes by subtraction instead,
/// w_ij = phi(q_i) . phi(k_j) - (1/N) sum_s phi(q_i) . phi(k_s) + 1/N, so every row still sums
/// to 1 but scaling q changes the weights. With S = sum_j phi(k_j) v_j^T, z = sum_j phi(k_j)
/// and vbar = (1/N) sum_j v_j (per sequence and KV head):
/// o_i = sum_j w_ij v_j = phi(q_i) S - (phi(q_i) . z) vbar + vbar. Non-causal (one global
/// state), as in the paper (vision): phi(Q) S by <see cref="ChunkedLinearAttention"/>
/// (global, unnormalized), then z, vbar and the combination (host loops, or the element-wise
/// kernels on an ILGPU device).
/// <para>
/// Q and K enter already mapped, phi(Q) (batch, heads, length, features) and phi(K) (batch,
/// kvHeads, length, features): any feature map (<see cref="FeatureMapping"/>), signed ones
/// included (injectivity needs no positivity). The authors' code uses the identity with the
/// factor d^(-1/2) / N on the query side: map Q by <see cref="ScaledIdentityMap.InLineQuery"/>
/// and K by <see cref="ScaledIdentityMap.Identity"/> to match it. The projections are model
/// layers around this call.
/// </para>
/// <para>
/// The local term (the overload taking an <see cref="InLineLocal"/>): the paper adds a local
/// module to the attention, which the authors' code (LeapLabTHU/InLine, inline_deit.py) writes
/// as a per-channel 3 x 3 depth-wise convolution of V over the h x w token grid, zero padded,
/// with weights made per sample from the input (a small MLP of the token mean) and no bias, the
/// class token left out of the grid and given no local term:
/// o_i += sum_(dy, dx) W[b, c, dy, dx] v_(i + (dy, dx)), c the channel (KV head, element).
/// Here the weights (batch, kvHeads, valueDim, k, k) and an optional bias (batch, kvHeads,
/// valueDim) are inputs; the tokens before <see cref="InLineLocal.Prefix"/> (class tokens) get
/// no local term. GQA (a reading; the paper has heads = kvHeads): every query head of a group
/// adds the convolution of its KV head's V.
/// </para>
/// </summary>
public static class InLineAttention
{
    /// <summary>
    /// InLine attention on host spans: phi(Q) (batch, heads, length, features), phi(K) (batch,
    /// kvHeads, length, features), V (batch, kvHeads, length, valueDim), output (batch, heads,
    /// length, valueDim). On the host z and vbar live in a buffer rented from
    /// <see cref="ArrayPool{T}"/>; on an ILGPU device the tensors are copied to buffers
    /// allocated for the call, the device computes everything, and the call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument) or the output overlaps an input; thrown before anything is written.
    /// </exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        CheckTensors(shape, shape.Features, query.Length, key.Length, value.Length,
            output.Length);
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value))
            throw new ArgumentException("output must not overlap query, key or value.",
                nameof(output));
        ForwardChecked(device, shape, query, key, value, output, null, default, default);
    }

    /// <summary>
    /// InLine attention with its local term on host spans: the span overload's output plus,
    /// on the <see cref="InLineLocal.Height"/> x <see cref="InLineLocal.Width"/> grid of the
    /// tokens after <see cref="InLineLocal.Prefix"/>, the depth-wise k x k convolution of V
    /// with <paramref name="weights"/> (batch, kvHeads, valueDim, k, k) and
    /// <paramref name="bias"/> (batch, kvHeads, valueDim) or empty (none, as the paper's code).
    /// Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload; the grid does not fit the
    /// length (prefix + height x width), the kernel is not odd and positive, the weights or
    /// bias have the wrong length, or the output overlaps them.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        InLineLocal local, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias,
        Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        CheckTensors(shape, shape.Features, query.Length, key.Length, value.Length,
            output.Length);
        local.Validate(shape, nameof(local));
        long channels = (long)shape.Batch * shape.KvHeads * shape.ValueDim;
        int k = local.Kernel;
        CheckLength(weights.Length, channels * k * k, nameof(weights),
            $"batch {shape.Batch} x kvHeads {shape.KvHeads} x valueDim {shape.ValueDim} x {k}"
            + $" x {k}");
        if (!bias.IsEmpty)
            CheckLength(bias.Length, channels, nameof(bias), $"batch {shape.Batch} x kvHeads "
                + $"{shape.KvHeads} x valueDim {shape.ValueDim} (or empty)");
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(weights) || output.Overlaps(bias))
            throw new ArgumentException(
                "output must not overlap query, key, value, weights or bias.", nameof(output));
        ForwardChecked(device, shape, query, key, value, output, local, weights, bias);
    }

    private static void ForwardChecked(ComputeDevice device, LinearAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output, InLineLocal? local, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> bias)
    {
        if (!device.IsHost)
        {
            var acc = device.Ilgpu;
            using var dq = acc.Allocate1D<float>(query.Length);
            using var dk = acc.Allocate1D<float>(key.Length);
            using var dv = acc.Allocate1D<float>(value.Length);
            using var dout = acc.Allocate1D<float>(output.Length);
            dq.View.AsContiguous().CopyFromCPU(query);
            dk.View.AsContiguous().CopyFromCPU(key);
            dv.View.AsContiguous().CopyFromCPU(value);
            RunIlgpu(device, shape, dq.View, dk.View, dv.View, dout.View, default);
            if (local is { } grid)
            {
                using var dw = acc.Allocate1D<float>(weights.Length);
                using var db = acc.Allocate1D<float>(Math.Max(1, bias.Length));
                dw.View.AsContiguous().CopyFromCPU(weights);
                if (!bias.IsEmpty) db.View.AsContiguous().CopyFromCPU(bias);
                RunLocal(device, shape, grid, dv.View, dw.View,
                    bias.IsEmpty ? default : db.View, dout.View);
                dout.View.AsContiguous().CopyToCPU(output);
                acc.Synchronize();
                return;
            }
            dout.View.AsContiguous().CopyToCPU(output);
            acc.Synchronize();
            return;
        }
        ChunkedLinearAttention.Forward(device, shape, query, key, value,
            ReadOnlySpan<float>.Empty, output, new LinearAttentionOptions());
        int items = shape.Batch * shape.KvHeads, f = shape.Features, dvim = shape.ValueDim,
            n = shape.Length, group = shape.GroupSize;
        float[] rented = ArrayPool<float>.Shared.Rent(items * (f + dvim));
        try
        {
            var z = rented.AsSpan(0, items * f);              // (batch, kvHeads, features)
            var mean = rented.AsSpan(items * f, items * dvim); // (batch, kvHeads, valueDim)
            z.Clear();
            mean.Clear();
            for (int it = 0; it < items; it++)
            for (int j = 0; j < n; j++)
            {
                var kRow = key.Slice((it * n + j) * f, f);
                var vRow = value.Slice((it * n + j) * dvim, dvim);
                for (int x = 0; x < f; x++) z[it * f + x] += kRow[x];
                for (int c = 0; c < dvim; c++) mean[it * dvim + c] += vRow[c];
            }
            for (int i = 0; i < mean.Length; i++) mean[i] /= n;
            int rows = shape.Batch * shape.Heads * n;
            for (int r = 0; r < rows; r++)
            {
                int it = r / n / group;
                var qRow = query.Slice(r * f, f);
                float dot = 0f;
                for (int x = 0; x < f; x++) dot += qRow[x] * z[it * f + x];
                var oRow = output.Slice(r * dvim, dvim);
                for (int c = 0; c < dvim; c++) oRow[c] += (1f - dot) * mean[it * dvim + c];
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
        if (local is { } g)
            VisionMath.DepthwiseConv(value, weights, bias, output, output,
                shape.Batch * shape.Heads, n, dvim, g.Height, g.Width, g.Kernel, g.Prefix,
                group, shape.KvHeads, perItem: true);
    }

    /// <summary>
    /// InLine attention on views of the device's accelerator, enqueued on its stream.
    /// <paramref name="scratch"/> receives z (batch, kvHeads, features) followed by vbar
    /// (batch, kvHeads, valueDim); it may be empty, and then a buffer is allocated for the call
    /// and released after the call waits for the device (pass one to keep the call
    /// asynchronous and allocation-free). Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator; scratch has the wrong length or overlaps a
    /// tensor.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> scratch)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        CheckTensors(shape, shape.Features, query.Length, key.Length, value.Length,
            output.Length);
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(scratch, nameof(scratch));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value)
            || Overlaps(output, scratch))
            throw new ArgumentException("output must not overlap query, key, value or scratch.",
                nameof(output));
        CheckScratch(scratch, ScratchLength(shape), nameof(scratch),
            "batch x kvHeads x (features + valueDim)", query, key, value);
        RunIlgpu(device, shape, query, key, value, output, scratch);
    }

    /// <summary>
    /// InLine attention with its local term on views of the device's accelerator, enqueued on
    /// its stream: weights (batch, kvHeads, valueDim, k, k), bias (batch, kvHeads, valueDim)
    /// or empty; scratch as the view overload without the local term. Otherwise as the span
    /// overload with the local term.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overloads; the device is the host; a
    /// view is memory of another accelerator; scratch has the wrong length or overlaps a
    /// tensor.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        InLineLocal local, ArrayView<float> query, ArrayView<float> key,
        ArrayView<float> value, ArrayView<float> weights, ArrayView<float> bias,
        ArrayView<float> output, ArrayView<float> scratch)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        CheckTensors(shape, shape.Features, query.Length, key.Length, value.Length,
            output.Length);
        local.Validate(shape, nameof(local));
        long channels = (long)shape.Batch * shape.KvHeads * shape.ValueDim;
        int k = local.Kernel;
        CheckLength(weights.Length, channels * k * k, nameof(weights),
            $"batch {shape.Batch} x kvHeads {shape.KvHeads} x valueDim {shape.ValueDim} x {k}"
            + $" x {k}");
        if (bias.Length != 0)
            CheckLength(bias.Length, channels, nameof(bias), $"batch {shape.Batch} x kvHeads "
                + $"{shape.KvHeads} x valueDim {shape.ValueDim} (or empty)");
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(weights, nameof(weights));
        device.CheckOwns(bias, nameof(bias));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(scratch, nameof(scratch));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value)
            || Overlaps(output, weights) || Overlaps(output, bias) || Overlaps(output, scratch))
            throw new ArgumentException(
                "output must not overlap query, key, value, weights, bias or scratch.",
                nameof(output));
        CheckScratch(scratch, ScratchLength(shape), nameof(scratch),
            "batch x kvHeads x (features + valueDim)", query, key, value, weights, bias);
        RunIlgpu(device, shape, query, key, value, output, scratch);
        RunLocal(device, shape, local, value, weights, bias, output);
    }

    /// <summary>Adds the local term to the output in place (the step reads element e of the
    /// output as its addend only).</summary>
    private static void RunLocal(ComputeDevice device, LinearAttentionShape shape,
        InLineLocal local, ArrayView<float> value, ArrayView<float> weights,
        ArrayView<float> bias, ArrayView<float> output)
    {
        int flags = DepthwiseConvStep.PerItem | DepthwiseConvStep.HasAddend
            | (bias.Length == 0 ? 0 : DepthwiseConvStep.HasBias);
        LinearMechanismKernel.Run(device, new DepthwiseConvStep(shape.Length, shape.ValueDim,
            local.Height, local.Width, local.Kernel, local.Prefix, shape.GroupSize,
            shape.KvHeads, flags), output, value, weights, bias, output);
    }

    /// <summary>Elements of the view overload's scratch: batch * kvHeads * (features +
    /// valueDim).</summary>
    public static long ScratchLength(LinearAttentionShape shape) =>
        (long)shape.Batch * shape.KvHeads * (shape.Features + shape.ValueDim);

    private static void RunIlgpu(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> scratch)
    {
        MemoryBuffer1D<float, Stride1D.Dense>? owned = null;
        if (scratch.Length == 0)
        {
            owned = device.Ilgpu.Allocate1D<float>(ScratchLength(shape));
            scratch = owned.View;
        }
        try
        {
            long items = (long)shape.Batch * shape.KvHeads;
            int f = shape.Features, dv = shape.ValueDim, n = shape.Length;
            var z = scratch.SubView(0, items * f);           // (batch, kvHeads, features)
            var mean = scratch.SubView(items * f, items * dv); // (batch, kvHeads, valueDim)
            ChunkedLinearAttention.Forward(device, shape, query, key, value,
                ReadOnlySpan<float>.Empty, output, new LinearAttentionOptions());
            LinearMechanismKernel.Run(device, new ColumnSumStep(n, f, 1f), z, key);
            LinearMechanismKernel.Run(device, new ColumnSumStep(n, dv, 1f / n), mean, value);
            LinearMechanismKernel.Run(device,
                new InLineCombineStep(n, f, dv, shape.GroupSize), output, output, query, z,
                mean);
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
}
