using System.Buffers;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using static Managed.Kernels.LinearAttention.LinearMechanismChecks;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// RALA, rank-augmented linear attention (Fan, Huang and He, "Breaking the Low-Rank Dilemma of
/// Linear Attention", CVPR 2025). Linear attention's KV buffer sum_j phi(k_j) v_j^T and its
/// outputs are low-rank; RALA raises the buffer's rank by weighting every token with a
/// context-aware coefficient, and the output's by an element-wise modulation with an input
/// projection:
/// <code>
/// qbar    = mean over the queries of phi(q_i)
/// alpha_j = N softmax_j(scale qbar . phi(k_j))          (sum_j alpha_j = N)
/// o_i     = g_i (.) phi(q_i) sum_j alpha_j phi(k_j) v_j^T / phi(q_i) . sum_j alpha_j phi(k_j)
/// </code>
/// This is the form of the authors' released code (GateLinearAttentionNoSilu in qhfan/RALA):
/// phi = elu + 1, scale = d^(-1/2), the coefficients multiply the mapped keys, the result is
/// normalized linear attention over (phi(Q), alpha phi(K), V), and g is the gate projection
/// ("o" of their qkvo). Read, not copied: their epsilon (1e-6 in the normalizer) is left out,
/// and their RoPE on the product's features, the LePE (a depth-wise convolution of V) and the
/// output projection are model layers around this call.
/// <para>
/// GQA (a reading; the paper has one KV head per query head): qbar is the mean of phi(q_i) over
/// the tokens of every query head of the KV head's group, so the group shares one alpha and
/// one KV buffer; with heads = kvHeads it is the paper's per-head mean.
/// </para>
/// <para>
/// Q and K enter mapped: phi(Q) (batch, heads, length, features), phi(K) (batch, kvHeads,
/// length, features) by any non-negative <see cref="IFeatureMap"/> (the paper's
/// <see cref="EluPlusOneMap"/>). Non-causal (one global state), as in the paper (vision).
/// The alphas by host loops or element-wise steps on an ILGPU device, then
/// <see cref="ChunkedLinearAttention"/> (global, normalized) and the gate.
/// </para>
/// </summary>
public static class RalaAttention
{
    /// <summary>
    /// RALA on host spans: phi(Q) (batch, heads, length, features), phi(K) (batch, kvHeads,
    /// length, features), V (batch, kvHeads, length, valueDim), <paramref name="gate"/> g
    /// (batch, heads, length, valueDim) or empty (no modulation: g = 1), output (batch, heads,
    /// length, valueDim); <paramref name="scale"/> multiplies qbar . phi(k_j) (null:
    /// 1 / sqrt(features)). On an ILGPU device the tensors are copied to buffers allocated for
    /// the call and the call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and the dimension), the scale is not finite, or the output overlaps an
    /// input; thrown before anything is written.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        ReadOnlySpan<float> gate, Span<float> output, float? scale = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        CheckTensors(shape, shape.Features, query.Length, key.Length, value.Length,
            output.Length);
        if (!gate.IsEmpty)
            CheckLength(gate.Length, shape.OutputLength, nameof(gate),
                $"batch {shape.Batch} x heads {shape.Heads} x length {shape.Length} x valueDim "
                + $"{shape.ValueDim} (or empty)");
        float sc = scale ?? 1f / MathF.Sqrt(shape.Features);
        if (!float.IsFinite(sc))
            throw new ArgumentException($"scale must be finite, got {sc}.", nameof(scale));
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(gate))
            throw new ArgumentException("output must not overlap query, key, value or gate.",
                nameof(output));
        long items = (long)shape.Batch * shape.KvHeads;
        int f = shape.Features, n = shape.Length, g = shape.GroupSize;
        var normalized = new LinearAttentionOptions { Normalize = true };
        if (!device.IsHost)
        {
            var acc = device.Ilgpu;
            using var dq = acc.Allocate1D<float>(query.Length);
            using var dk = acc.Allocate1D<float>(key.Length);
            using var dvv = acc.Allocate1D<float>(value.Length);
            using var dg = acc.Allocate1D<float>(Math.Max(1, gate.Length));
            using var dout = acc.Allocate1D<float>(output.Length);
            using var scratch = acc.Allocate1D<float>(ScratchLength(shape));
            dq.View.AsContiguous().CopyFromCPU(query);
            dk.View.AsContiguous().CopyFromCPU(key);
            dvv.View.AsContiguous().CopyFromCPU(value);
            if (!gate.IsEmpty) dg.View.AsContiguous().CopyFromCPU(gate);
            RunIlgpu(device, shape, dq.View, dk.View, dvv.View,
                gate.IsEmpty ? default : dg.View, dout.View, scratch.View, sc);
            dout.View.AsContiguous().CopyToCPU(output);
            acc.Synchronize();
            return;
        }
        float[] rented = ArrayPool<float>.Shared.Rent((int)(key.Length + f + n));
        try
        {
            var kw = rented.AsSpan(0, key.Length);               // alpha phi(K), as phi(K)
            var qMean = rented.AsSpan(key.Length, f);            // (features)
            var logits = rented.AsSpan(key.Length + f, n);       // (length)
            for (int it = 0; it < items; it++)
            {
                qMean.Clear();
                var qGroup = query.Slice(it * g * n * f, g * n * f);
                for (int r = 0; r < g * n; r++)
                for (int x = 0; x < f; x++) qMean[x] += qGroup[r * f + x];
                for (int x = 0; x < f; x++) qMean[x] *= sc / (g * n);
                var kItem = key.Slice(it * n * f, n * f);
                float max = float.NegativeInfinity;
                for (int j = 0; j < n; j++)
                {
                    float l = 0f;
                    for (int x = 0; x < f; x++) l += qMean[x] * kItem[j * f + x];
                    logits[j] = l;
                    max = MathF.Max(max, l);
                }
                float total = 0f;
                for (int j = 0; j < n; j++) total += MathF.Exp(logits[j] - max);
                for (int j = 0; j < n; j++)
                {
                    float alpha = MathF.Exp(logits[j] - max) / total * n;
                    for (int x = 0; x < f; x++)
                        kw[(it * n + j) * f + x] = alpha * kItem[j * f + x];
                }
            }
            ChunkedLinearAttention.Forward(device, shape, query, kw, value,
                ReadOnlySpan<float>.Empty, output, normalized);
            for (int e = 0; e < gate.Length; e++) output[e] *= gate[e];
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// RALA on views of the device's accelerator, enqueued on its stream; <paramref name="gate"/>
    /// may be empty (no modulation). <paramref name="scratch"/> holds qbar, the logits, their
    /// log-sum-exp and alpha phi(K) (<see cref="ScratchLength"/> elements); it may be empty,
    /// and then a buffer is allocated for the call and released after the call waits for the
    /// device. Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator; scratch has the wrong length or overlaps a
    /// tensor.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> gate, ArrayView<float> output, ArrayView<float> scratch,
        float? scale = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        CheckTensors(shape, shape.Features, query.Length, key.Length, value.Length,
            output.Length);
        if (gate.Length != 0)
            CheckLength(gate.Length, shape.OutputLength, nameof(gate),
                $"batch {shape.Batch} x heads {shape.Heads} x length {shape.Length} x valueDim "
                + $"{shape.ValueDim} (or empty)");
        float sc = scale ?? 1f / MathF.Sqrt(shape.Features);
        if (!float.IsFinite(sc))
            throw new ArgumentException($"scale must be finite, got {sc}.", nameof(scale));
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(gate, nameof(gate));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(scratch, nameof(scratch));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value)
            || Overlaps(output, gate) || Overlaps(output, scratch))
            throw new ArgumentException(
                "output must not overlap query, key, value, gate or scratch.", nameof(output));
        CheckScratch(scratch, ScratchLength(shape), nameof(scratch),
            "RalaAttention.ScratchLength(shape)", query, key, value, gate);
        MemoryBuffer1D<float, Stride1D.Dense>? owned = null;
        if (scratch.Length == 0)
        {
            owned = device.Ilgpu.Allocate1D<float>(ScratchLength(shape));
            scratch = owned.View;
        }
        try
        {
            RunIlgpu(device, shape, query, key, value, gate, output, scratch, sc);
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

    /// <summary>Elements of the view overload's scratch: with I = batch * kvHeads,
    /// I (features + length + 1) + I length features (alpha phi(K)).</summary>
    public static long ScratchLength(LinearAttentionShape shape)
    {
        long items = (long)shape.Batch * shape.KvHeads;
        return items * (shape.Features + shape.Length + 1) + shape.KeyLength;
    }

    private static void RunIlgpu(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> gate, ArrayView<float> output, ArrayView<float> scratch, float sc)
    {
        long items = (long)shape.Batch * shape.KvHeads;
        int f = shape.Features, n = shape.Length, g = shape.GroupSize;
        var qMean = scratch.SubView(0, items * f);         // (batch, kvHeads, features)
        var logits = scratch.SubView(items * f, items * n); // (batch, kvHeads, length)
        var lse = scratch.SubView(items * (f + n), items);  // (batch, kvHeads)
        var kw = scratch.SubView(items * (f + n + 1), shape.KeyLength); // alpha phi(K)
        // The query heads of a KV head are contiguous: (batch kvHeads, group length, F).
        LinearMechanismKernel.Run(device, new ColumnSumStep(g * n, f, sc / (g * n)), qMean,
            query);
        LinearMechanismKernel.Run(device, new RowDotStep(n, f, 1), logits, key, qMean);
        LinearMechanismKernel.Run(device, new LogSumExpStep(n), lse, logits);
        LinearMechanismKernel.Run(device, new CompetitionStep(n, f), kw, logits, key, lse);
        ChunkedLinearAttention.Forward(device, shape, query, kw, value,
            ReadOnlySpan<float>.Empty, output, new LinearAttentionOptions { Normalize = true });
        if (gate.Length != 0)
            LinearMechanismKernel.Run(device, default(MultiplyStep), output, output, gate);
    }
}
