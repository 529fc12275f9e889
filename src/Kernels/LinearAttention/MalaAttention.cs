using System.Buffers;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using static Managed.Kernels.LinearAttention.LinearMechanismChecks;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// MALA, magnitude-aware linear attention (Fan, Huang, Ai and He, "Rectifying Magnitude
/// Neglect in Linear Attention", ICCV 2025). Division-normalized linear attention
/// phi(q_i) . phi(k_j) / sum_s phi(q_i) . phi(k_s) gives q and c q the same weights (it
/// neglects the query's magnitude), while softmax sharpens as |q| grows. MALA normalizes by a
/// scale and an offset instead: with m_i = phi(q_i) . kbar, kbar = (1/N) sum_j phi(k_j),
/// <code>
/// w_ij = beta_i phi(q_i) . phi(k_j) - gamma_i,  beta_i = (1 + 1 / m_i) / N,  gamma_i = m_i / N
/// o_i  = sum_j w_ij v_j = (1 + 1 / m_i) phi(q_i) S / N - m_i vbar
/// </code>
/// with S = sum_j phi(k_j) v_j^T and vbar = (1/N) sum_j v_j (per sequence and KV head). Every
/// row sums to 1 (sum_j w_ij = (1 + 1/m_i) m_i - m_i), and scaling phi(q_i) by c &gt; 0 moves
/// the weights away from the uniform 1/N by the factor (c m_i + 1) / (m_i + 1): larger queries
/// give sharper rows (lower entropy while the weights stay positive), as softmax does.
/// <para>
/// This is the form of the authors' released code (AddLinearAttention in qhfan/MALA), where
/// kv = sum_j phi(k_j) v_j^T * scale / N, z_i = phi(q_i) . mean_j phi(k_j) * scale and
/// o_i = phi(q_i) kv (1 + 1 / z_i) - z_i vbar: their scale d^(-1/2) multiplies phi(q_i) in both
/// places, so it is folded into the mapped queries here: map Q by
/// <see cref="ScaledEluPlusOneMap.MalaQuery"/> and K by
/// <see cref="ScaledEluPlusOneMap.Unscaled"/> to match them. Read, not copied: their epsilon
/// (1e-6 added to z_i) is left out so rows sum to 1 exactly, and their RoPE on phi(Q), phi(K)
/// inside the product (but not in z_i) and the LePE and output gate around the call are model
/// layers (the LePE is a depth-wise convolution of V, as in <see cref="InLineAttention"/>'s
/// local term). A row with m_i = 0 (possible only with signed features) divides by zero.
/// </para>
/// <para>
/// Q and K enter mapped: phi(Q) (batch, heads, length, features), phi(K) (batch, kvHeads,
/// length, features) by any <see cref="IFeatureMap"/> (the paper uses elu + 1,
/// <see cref="EluPlusOneMap"/>); query heads of a KV head share its S, kbar and vbar (GQA).
/// Non-causal (one global state), as in the paper (vision). phi(Q) S by
/// <see cref="ChunkedLinearAttention"/> (global, unnormalized), then kbar, vbar and the
/// combination: host loops, or the element-wise steps on an ILGPU device.
/// </para>
/// </summary>
public static class MalaAttention
{
    /// <summary>
    /// MALA on host spans: phi(Q) (batch, heads, length, features), phi(K) (batch, kvHeads,
    /// length, features), V (batch, kvHeads, length, valueDim), output (batch, heads, length,
    /// valueDim). On an ILGPU device the tensors are copied to buffers allocated for the call,
    /// the device computes everything, and the call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and the dimension) or the output overlaps an input; thrown before anything
    /// is written.</exception>
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
        long items = (long)shape.Batch * shape.KvHeads;
        int f = shape.Features, dv = shape.ValueDim, n = shape.Length;
        if (!device.IsHost)
        {
            var acc = device.Ilgpu;
            using var dq = acc.Allocate1D<float>(query.Length);
            using var dk = acc.Allocate1D<float>(key.Length);
            using var dvv = acc.Allocate1D<float>(value.Length);
            using var dout = acc.Allocate1D<float>(output.Length);
            using var scratch = acc.Allocate1D<float>(ScratchLength(shape));
            dq.View.AsContiguous().CopyFromCPU(query);
            dk.View.AsContiguous().CopyFromCPU(key);
            dvv.View.AsContiguous().CopyFromCPU(value);
            RunIlgpu(device, shape, dq.View, dk.View, dvv.View, dout.View, scratch.View);
            dout.View.AsContiguous().CopyToCPU(output);
            acc.Synchronize();
            return;
        }
        ChunkedLinearAttention.Forward(device, shape, query, key, value,
            ReadOnlySpan<float>.Empty, output, new LinearAttentionOptions());
        float[] rented = ArrayPool<float>.Shared.Rent((int)(items * (f + dv)));
        try
        {
            var kMean = rented.AsSpan(0, (int)items * f);              // (batch, kvHeads, features)
            // (batch, kvHeads, valueDim)
            var vMean = rented.AsSpan((int)items * f, (int)items * dv);
            ColumnMeans(key, kMean, (int)items, n, f);
            ColumnMeans(value, vMean, (int)items, n, dv);
            int rows = shape.Batch * shape.Heads * n, group = shape.GroupSize;
            for (int r = 0; r < rows; r++)
            {
                int it = r / n / group;
                var qRow = query.Slice(r * f, f);
                float m = 0f;
                for (int x = 0; x < f; x++) m += qRow[x] * kMean[it * f + x];
                float beta = (1f + 1f / m) / n;
                var oRow = output.Slice(r * dv, dv);
                for (int c = 0; c < dv; c++) oRow[c] = beta * oRow[c] - m * vMean[it * dv + c];
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// MALA on views of the device's accelerator, enqueued on its stream.
    /// <paramref name="scratch"/> receives kbar (batch, kvHeads, features) followed by vbar
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
        MemoryBuffer1D<float, Stride1D.Dense>? owned = null;
        if (scratch.Length == 0)
        {
            owned = device.Ilgpu.Allocate1D<float>(ScratchLength(shape));
            scratch = owned.View;
        }
        try
        {
            RunIlgpu(device, shape, query, key, value, output, scratch);
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

    /// <summary>Elements of the view overload's scratch: batch * kvHeads * (features +
    /// valueDim).</summary>
    public static long ScratchLength(LinearAttentionShape shape) =>
        (long)shape.Batch * shape.KvHeads * (shape.Features + shape.ValueDim);

    private static void RunIlgpu(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> scratch)
    {
        long items = (long)shape.Batch * shape.KvHeads;
        int f = shape.Features, dv = shape.ValueDim, n = shape.Length;
        var kMean = scratch.SubView(0, items * f);       // (batch, kvHeads, features)
        var vMean = scratch.SubView(items * f, items * dv); // (batch, kvHeads, valueDim)
        ChunkedLinearAttention.Forward(device, shape, query, key, value,
            ReadOnlySpan<float>.Empty, output, new LinearAttentionOptions());
        LinearMechanismKernel.Run(device, new ColumnSumStep(n, f, 1f / n), kMean, key);
        LinearMechanismKernel.Run(device, new ColumnSumStep(n, dv, 1f / n), vMean, value);
        LinearMechanismKernel.Run(device, new MalaCombineStep(n, f, dv, shape.GroupSize),
            output, output, query, kMean, vMean);
    }

    /// <summary>mean[item, c] = (1/rows) sum_r x[item, r, c] over an (items, rows, dim)
    /// tensor.</summary>
    internal static void ColumnMeans(ReadOnlySpan<float> x, Span<float> mean, int items,
        int rows, int dim)
    {
        mean.Clear();
        for (int it = 0; it < items; it++)
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice((it * rows + r) * dim, dim);
            for (int c = 0; c < dim; c++) mean[it * dim + c] += row[c];
        }
        for (int i = 0; i < mean.Length; i++) mean[i] /= rows;
    }
}
