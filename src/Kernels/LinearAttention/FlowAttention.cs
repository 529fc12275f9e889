using System.Buffers;
using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using static Managed.Kernels.LinearAttention.LinearMechanismChecks;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// Flow-Attention (Wu et al., "Flowformer: Linearizing Transformers with Conservation Flows"):
/// attention as a flow network whose sources are the values and whose sinks are the outputs,
/// with capacities phi(q_i) . phi(k_j), phi = sigmoid (element-wise). Per sequence and head,
/// over the N tokens (sinks i, sources j; n = m = N here):
/// <list type="bullet">
/// <item>incoming flow I_i = phi(q_i) . sum_j phi(k_j); outgoing O_j = phi(k_j) . sum_i
/// phi(q_i);</item>
/// <item>conserved flows Ihat_i = phi(q_i) . sum_j phi(k_j) / O_j (each source's outgoing flow
/// fixed to 1) and Ohat_j = phi(k_j) . sum_i phi(q_i) / I_i (each sink's incoming flow fixed to
/// 1); so sum_i Ihat_i = m and sum_j Ohat_j = n (the conservation identities);</item>
/// <item>competition Vhat_j = softmax_j(Ohat)_j * m * v_j (softmax over the m sources);</item>
/// <item>allocation A_i = sigmoid(Ihat_i * n / m);</item>
/// <item>output R_i = A_i * (phi(q_i) / I_i) . sum_j phi(k_j) Vhat_j^T.</item>
/// </list>
/// This is the form of the authors' released Flow_Attention (the factor m on the softmax and
/// n / m in the sigmoid; the paper writes Softmax(Ohat) and Sigmoid(Ihat)); their small
/// epsilons (1e-6 added to the features and sums) and the clamp of Ohat to [-1, 1] before the
/// softmax ("for stability") are left out, so the identities above hold exactly. With
/// <c>causal</c> the released Flow_Attention_Causal runs instead (see
/// <c>FlowAttention.Causal.cs</c>): every sum over tokens becomes a prefix sum, rescaled by the
/// token count. The projections are model layers around this call; heads must equal kvHeads
/// (each head has its own flows).
/// <para>
/// The host runs the equations as loops in linear time (per sequence and head: O(N F Dv)); an
/// ILGPU device runs them as element-wise steps and the final product as
/// <see cref="ChunkedLinearAttention"/> (global, normalized: its normalizer phi(q_i) . z is
/// I_i).
/// </para>
/// </summary>
public static partial class FlowAttention
{
    /// <summary>
    /// Flow-Attention on host spans: Q and K (batch, heads, length, features) before the sigmoid,
    /// V (batch, heads, length, valueDim), output (batch, heads, length, valueDim); the shape's
    /// KvHeads must equal Heads. <paramref name="conserved"/>, if not empty, receives Ihat
    /// (batch, heads, length) followed by Ohat (batch, heads, length). <paramref name="causal"/>
    /// runs the causal form (prefix flows; token i reads tokens 0..i only). On the host the
    /// intermediates live in buffers rented from <see cref="ArrayPool{T}"/>; on an ILGPU device
    /// the tensors are copied to buffers allocated for the call and the call waits.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument), kvHeads differs from heads, or the output overlaps an input; thrown
    /// before anything is written.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output, Span<float> conserved = default, bool causal = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        Validate(shape, query.Length, key.Length, value.Length, output.Length);
        long rowsTotal = (long)shape.Batch * shape.Heads * shape.Length;
        if (!conserved.IsEmpty)
            CheckLength(conserved.Length, 2 * rowsTotal, nameof(conserved),
                "2 x batch x heads x length (or empty)");
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value)
            || output.Overlaps(conserved))
            throw new ArgumentException(
                "output must not overlap query, key, value or conserved.", nameof(output));
        if (conserved.Overlaps(query) || conserved.Overlaps(key) || conserved.Overlaps(value))
            throw new ArgumentException("conserved must not overlap query, key or value.",
                nameof(conserved));
        if (!device.IsHost)
        {
            var acc = device.Ilgpu;
            using var dq = acc.Allocate1D<float>(query.Length);
            using var dk = acc.Allocate1D<float>(key.Length);
            using var dv = acc.Allocate1D<float>(value.Length);
            using var dout = acc.Allocate1D<float>(output.Length);
            using var scratch = acc.Allocate1D<float>(ScratchLength(shape, causal));
            dq.View.AsContiguous().CopyFromCPU(query);
            dk.View.AsContiguous().CopyFromCPU(key);
            dv.View.AsContiguous().CopyFromCPU(value);
            if (causal)
                RunIlgpuCausal(device, shape, dq.View, dk.View, dv.View, dout.View, scratch.View);
            else
                RunIlgpu(device, shape, dq.View, dk.View, dv.View, dout.View, scratch.View);
            dout.View.AsContiguous().CopyToCPU(output);
            if (!conserved.IsEmpty)
                scratch.View.SubView(ConservedOffset(shape, causal), 2 * rowsTotal).AsContiguous()
                    .CopyToCPU(conserved);
            acc.Synchronize();
            return;
        }
        if (causal) ForwardHostCausal(shape, query, key, value, output, conserved);
        else ForwardHost(shape, query, key, value, output, conserved);
    }

    /// <summary>
    /// Flow-Attention on views of the device's accelerator, enqueued on its stream.
    /// <paramref name="scratch"/> holds the intermediates (<see cref="ScratchLength"/>
    /// elements; Ihat (batch, heads, length) then Ohat (batch, heads, length) start at
    /// <see cref="ConservedOffset"/>); it may be empty, and then a buffer is allocated for the
    /// call and released after the call waits for the device (pass one to keep the call
    /// asynchronous and allocation-free). Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload; the device is the host; a
    /// view is memory of another accelerator; scratch has the wrong length or overlaps a
    /// tensor.</exception>
    public static void Forward(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> scratch, bool causal = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        Validate(shape, query.Length, key.Length, value.Length, output.Length);
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(scratch, nameof(scratch));
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value)
            || Overlaps(output, scratch))
            throw new ArgumentException("output must not overlap query, key, value or scratch.",
                nameof(output));
        CheckScratch(scratch, ScratchLength(shape, causal), nameof(scratch),
            "FlowAttention.ScratchLength(shape, causal)", query, key, value);
        MemoryBuffer1D<float, Stride1D.Dense>? owned = null;
        if (scratch.Length == 0)
        {
            owned = device.Ilgpu.Allocate1D<float>(ScratchLength(shape, causal));
            scratch = owned.View;
        }
        try
        {
            if (causal) RunIlgpuCausal(device, shape, query, key, value, output, scratch);
            else RunIlgpu(device, shape, query, key, value, output, scratch);
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

    /// <summary>Elements of the view overload's scratch: with R = batch * heads, 2 R N F
    /// (sigmoid features) + 4 R F (sums) + 4 R N (flows) + R (log-sum-exp) + R N Dv (Vhat);
    /// causal: 2 R N F + 8 R N (ones, flows, their count ratios, competition) + R N Dv.
    /// </summary>
    public static long ScratchLength(LinearAttentionShape shape, bool causal = false)
    {
        long r = (long)shape.Batch * shape.Heads, n = shape.Length, f = shape.Features;
        return causal ? 2 * r * n * f + 8 * r * n + r * n * shape.ValueDim
            : 2 * r * n * f + 4 * r * f + 4 * r * n + r + r * n * shape.ValueDim;
    }

    /// <summary>Where Ihat (batch, heads, length) and then Ohat (batch, heads, length) start in
    /// the view overload's scratch: 2 R N F + 4 R F + 2 R N, R = batch * heads (causal:
    /// 2 R N F + 5 R N).</summary>
    public static long ConservedOffset(LinearAttentionShape shape, bool causal = false)
    {
        long r = (long)shape.Batch * shape.Heads, n = shape.Length, f = shape.Features;
        return causal ? 2 * r * n * f + 5 * r * n : 2 * r * n * f + 4 * r * f + 2 * r * n;
    }

    private static void Validate(LinearAttentionShape shape, long query, long key, long value,
        long output)
    {
        shape.Validate(nameof(shape));
        if (shape.KvHeads != shape.Heads)
            throw new ArgumentException($"Flow-Attention needs KvHeads = Heads (each head has its "
                + $"own flows); got Heads {shape.Heads}, KvHeads {shape.KvHeads}.",
                nameof(shape));
        CheckTensors(shape, shape.Features, query, key, value, output);
        long scratch = Math.Max(ScratchLength(shape), ScratchLength(shape, causal: true));
        if (scratch > int.MaxValue)
            throw new ArgumentException(
                $"{shape} needs {scratch} elements of scratch; at most {int.MaxValue}.",
                nameof(shape));
    }

    private static void RunIlgpu(ComputeDevice device, LinearAttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> scratch)
    {
        long r = (long)shape.Batch * shape.Heads;
        int n = shape.Length, f = shape.Features, dv = shape.ValueDim;
        long at = 0;
        ArrayView<float> Take(long length)
        {
            var view = scratch.SubView(at, length);
            at += length;
            return view;
        }
        var pq = Take(r * n * f);   // sigmoid(Q) (batch, heads, length, features)
        var pk = Take(r * n * f);   // sigmoid(K)
        var qSum = Take(r * f);     // sum_i phi(q_i) (batch, heads, features)
        var kSum = Take(r * f);     // sum_j phi(k_j)
        var qByI = Take(r * f);     // sum_i phi(q_i) / I_i
        var kByO = Take(r * f);     // sum_j phi(k_j) / O_j
        var incoming = Take(r * n); // I (batch, heads, length)
        var outgoing = Take(r * n); // O
        var inHat = Take(r * n);    // Ihat: at ConservedOffset
        var outHat = Take(r * n);   // Ohat
        var lse = Take(r);          // log sum_j exp(Ohat_j) (batch, heads)
        var vHat = Take(r * n * dv); // Vhat (batch, heads, length, valueDim)
        LinearMechanismKernel.Run(device, default(SigmoidStep), pq, query);
        LinearMechanismKernel.Run(device, default(SigmoidStep), pk, key);
        LinearMechanismKernel.Run(device, new ColumnSumStep(n, f, 1f), qSum, pq);
        LinearMechanismKernel.Run(device, new ColumnSumStep(n, f, 1f), kSum, pk);
        LinearMechanismKernel.Run(device, new RowDotStep(n, f, 1), incoming, pq, kSum);
        LinearMechanismKernel.Run(device, new RowDotStep(n, f, 1), outgoing, pk, qSum);
        LinearMechanismKernel.Run(device, new WeightedColumnSumStep(n, f), qByI, pq, incoming);
        LinearMechanismKernel.Run(device, new WeightedColumnSumStep(n, f), kByO, pk, outgoing);
        LinearMechanismKernel.Run(device, new RowDotStep(n, f, 1), inHat, pq, kByO);
        LinearMechanismKernel.Run(device, new RowDotStep(n, f, 1), outHat, pk, qByI);
        LinearMechanismKernel.Run(device, new LogSumExpStep(n), lse, outHat);
        LinearMechanismKernel.Run(device, new CompetitionStep(n, dv), vHat, outHat, value, lse);
        // Normalized global linear attention divides by phi(q_i) . sum_j phi(k_j) = I_i.
        ChunkedLinearAttention.Forward(device, shape, pq, pk, vHat, ReadOnlySpan<float>.Empty,
            output, new LinearAttentionOptions { Normalize = true });
        LinearMechanismKernel.Run(device, new AllocationStep(dv, 1f), output, output, inHat);
    }

    private static void ForwardHost(LinearAttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> conserved)
    {
        int items = shape.Batch * shape.Heads, n = shape.Length, f = shape.Features,
            dv = shape.ValueDim;
        int need = 2 * n * f + 4 * f + 4 * n + f * dv;
        float[] rented = ArrayPool<float>.Shared.Rent(need);
        try
        {
            var buffer = rented.AsSpan(0, need);
            var pq = buffer[..(n * f)];               // (length, features)
            var pk = buffer.Slice(n * f, n * f);
            var sums = buffer.Slice(2 * n * f, 4 * f); // qSum, kSum, qByI, kByO
            var qSum = sums[..f];
            var kSum = sums.Slice(f, f);
            var qByI = sums.Slice(2 * f, f);
            var kByO = sums.Slice(3 * f, f);
            var flows = buffer.Slice(2 * n * f + 4 * f, 4 * n);
            var incoming = flows[..n];
            var outgoing = flows.Slice(n, n);
            var inHat = flows.Slice(2 * n, n);
            var outHat = flows.Slice(3 * n, n);
            var state = buffer.Slice(2 * n * f + 4 * f + 4 * n, f * dv); // (features, valueDim)
            for (int it = 0; it < items; it++)
            {
                var q = query.Slice(it * n * f, n * f);
                var k = key.Slice(it * n * f, n * f);
                var v = value.Slice(it * n * dv, n * dv);
                var o = output.Slice(it * n * dv, n * dv);
                TensorPrimitives.Sigmoid(q, pq);
                TensorPrimitives.Sigmoid(k, pk);
                sums.Clear();
                for (int i = 0; i < n; i++)
                for (int x = 0; x < f; x++)
                {
                    qSum[x] += pq[i * f + x];
                    kSum[x] += pk[i * f + x];
                }
                for (int i = 0; i < n; i++)
                {
                    incoming[i] = Dot(pq.Slice(i * f, f), kSum);
                    outgoing[i] = Dot(pk.Slice(i * f, f), qSum);
                }
                for (int i = 0; i < n; i++)
                for (int x = 0; x < f; x++)
                {
                    qByI[x] += pq[i * f + x] / incoming[i];
                    kByO[x] += pk[i * f + x] / outgoing[i];
                }
                float max = float.NegativeInfinity;
                for (int i = 0; i < n; i++)
                {
                    inHat[i] = Dot(pq.Slice(i * f, f), kByO);
                    outHat[i] = Dot(pk.Slice(i * f, f), qByI);
                    max = MathF.Max(max, outHat[i]);
                }
                float total = 0f;
                for (int j = 0; j < n; j++) total += MathF.Exp(outHat[j] - max);
                // S = sum_j phi(k_j) Vhat_j^T with Vhat_j = softmax(Ohat)_j * m * v_j.
                state.Clear();
                for (int j = 0; j < n; j++)
                {
                    float w = MathF.Exp(outHat[j] - max) / total * n;
                    for (int x = 0; x < f; x++)
                    {
                        float kw = pk[j * f + x] * w;
                        var row = state.Slice(x * dv, dv);
                        for (int c = 0; c < dv; c++) row[c] += kw * v[j * dv + c];
                    }
                }
                for (int i = 0; i < n; i++)
                {
                    // A_i / I_i, with A_i = sigmoid(Ihat_i * n / m), n = m.
                    ReadState(pq.Slice(i * f, f),
                        1f / (1f + MathF.Exp(-inHat[i])) / incoming[i], state, o.Slice(i * dv, dv));
                }
                if (!conserved.IsEmpty)
                {
                    inHat.CopyTo(conserved.Slice(it * n, n));
                    outHat.CopyTo(conserved.Slice(items * n + it * n, n));
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>o = scale phi(q) S, S the (features, valueDim) state.</summary>
    private static void ReadState(ReadOnlySpan<float> phiQ, float scale, ReadOnlySpan<float> state,
        Span<float> o)
    {
        int dv = o.Length;
        o.Clear();
        for (int x = 0; x < phiQ.Length; x++)
            TensorPrimitives.MultiplyAdd(state.Slice(x * dv, dv), phiQ[x] * scale, o, o);
    }

    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float sum = 0f;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }
}
