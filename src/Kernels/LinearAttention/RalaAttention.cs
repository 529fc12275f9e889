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
            using var scratch = acc.Allocate1D<float>(items * (f + n + 1) + key.Length);
            dq.View.AsContiguous().CopyFromCPU(query);
            dk.View.AsContiguous().CopyFromCPU(key);
            dvv.View.AsContiguous().CopyFromCPU(value);
            if (!gate.IsEmpty) dg.View.AsContiguous().CopyFromCPU(gate);
            var qMean = scratch.View.SubView(0, items * f);         // (batch, kvHeads, features)
            var logits = scratch.View.SubView(items * f, items * n); // (batch, kvHeads, length)
            var lse = scratch.View.SubView(items * (f + n), items);  // (batch, kvHeads)
            var kw = scratch.View.SubView(items * (f + n + 1), key.Length); // alpha phi(K)
            // The query heads of a KV head are contiguous: (batch kvHeads, group length, F).
            LinearMechanismKernel.Run(device, new ColumnSumStep(g * n, f, sc / (g * n)), qMean,
                dq.View);
            LinearMechanismKernel.Run(device, new RowDotStep(n, f, 1), logits, dk.View, qMean);
            LinearMechanismKernel.Run(device, new LogSumExpStep(n), lse, logits);
            LinearMechanismKernel.Run(device, new CompetitionStep(n, f), kw, logits, dk.View,
                lse);
            ChunkedLinearAttention.Forward(device, shape, dq.View, kw, dvv.View,
                ReadOnlySpan<float>.Empty, dout.View, normalized);
            if (!gate.IsEmpty)
                LinearMechanismKernel.Run(device, default(MultiplyStep), dout.View, dout.View,
                    dg.View);
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
}
