using System.Buffers;
using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.LinearAttention;

// Causal Flow-Attention, the form of the authors' released Flow_Attention_Causal (the paper's
// autoregressive variant): every sum over tokens becomes a prefix sum, and the count
// c_i = i + 1 of the tokens summed stands for the sizes n and m of the non-causal form. Per
// sequence and head, phi = sigmoid:
//   I_i = phi(q_i) . sum_{j<=i} phi(k_j),          O_j = phi(k_j) . sum_{t<=j} phi(q_t);
//   Ihat_i = phi(q_i) . sum_{j<=i} phi(k_j) c_j / O_j / c_i,
//   Ohat_j = phi(k_j) . sum_{t<=j} phi(q_t) c_t / I_t / c_j;
//   competition w_j = exp(Ohat_j) / sum_{t<=j} exp(Ohat_t) * c_j (a prefix softmax);
//   R_i = sigmoid(Ihat_i) * (phi(q_i) / I_i) . sum_{j<=i} phi(k_j) (w_j v_j)^T.
// As in the non-causal form, the released epsilons and the clamp of Ohat to [-1, 1] are left
// out; the prefix softmax is kept finite by a running maximum instead. Token 0 reads itself
// only: Ihat_0 = 1, w_0 = 1, so R_0 = sigmoid(1) v_0.
public static partial class FlowAttention
{
    private static void RunIlgpuCausal(ComputeDevice device, LinearAttentionShape shape,
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
        var pq = Take(r * n * f);     // sigmoid(Q) (batch, heads, length, features)
        var pk = Take(r * n * f);     // sigmoid(K)
        var ones = Take(r * n);       // the value column of the prefix flows
        var incoming = Take(r * n);   // I (batch, heads, length)
        var outgoing = Take(r * n);   // O
        var inRatio = Take(r * n);    // c_i / I_i
        var outRatio = Take(r * n);   // c_j / O_j
        var inHat = Take(r * n);      // Ihat: at ConservedOffset(shape, causal: true)
        var outHat = Take(r * n);     // Ohat
        var weight = Take(r * n);     // the competition w
        var vHat = Take(r * n * dv);  // w_j v_j (batch, heads, length, valueDim)
        LinearMechanismKernel.Run(device, default(SigmoidStep), pq, query);
        LinearMechanismKernel.Run(device, default(SigmoidStep), pk, key);
        LinearMechanismKernel.Run(device, default(OnesStep), ones, ones);
        // Each prefix flow is causal linear attention with one value column: the features of
        // the reading side as queries, of the summed side as keys.
        var column = shape with { ValueDim = 1 };
        var prefix = new LinearAttentionOptions { Causal = true };
        void Prefix(ArrayView<float> reader, ArrayView<float> summed, ArrayView<float> values,
            ArrayView<float> result) =>
            ChunkedLinearAttention.Forward(device, column, reader, summed, values,
                ReadOnlySpan<float>.Empty, result, prefix);
        Prefix(pq, pk, ones, incoming);
        Prefix(pk, pq, ones, outgoing);
        LinearMechanismKernel.Run(device, new CountRatioStep(n), inRatio, incoming);
        LinearMechanismKernel.Run(device, new CountRatioStep(n), outRatio, outgoing);
        Prefix(pq, pk, outRatio, inHat);
        Prefix(pk, pq, inRatio, outHat);
        LinearMechanismKernel.Run(device, new CountDivideStep(n), inHat, inHat);
        LinearMechanismKernel.Run(device, new CountDivideStep(n), outHat, outHat);
        FlowCompetitionKernel.Run(device, outHat, weight, (int)r, n);
        LinearMechanismKernel.Run(device, new RowScaleStep(dv), vHat, value, weight);
        // Normalized causal linear attention divides by phi(q_i) . sum_{j<=i} phi(k_j) = I_i.
        ChunkedLinearAttention.Forward(device, shape, pq, pk, vHat, ReadOnlySpan<float>.Empty,
            output, new LinearAttentionOptions { Causal = true, Normalize = true });
        LinearMechanismKernel.Run(device, new AllocationStep(dv, 1f), output, output, inHat);
    }

    private static void ForwardHostCausal(LinearAttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> conserved)
    {
        int items = shape.Batch * shape.Heads, n = shape.Length, f = shape.Features,
            dv = shape.ValueDim;
        int need = 2 * n * f + 2 * f + 4 * n + f * dv;
        float[] rented = ArrayPool<float>.Shared.Rent(need);
        try
        {
            var buffer = rented.AsSpan(0, need);
            var pq = buffer[..(n * f)];                     // (length, features)
            var pk = buffer.Slice(n * f, n * f);
            var qRun = buffer.Slice(2 * n * f, f);          // running sums over tokens
            var kRun = buffer.Slice(2 * n * f + f, f);
            var flows = buffer.Slice(2 * n * f + 2 * f, 4 * n);
            var incoming = flows[..n];
            var outgoing = flows.Slice(n, n);
            var inHat = flows.Slice(2 * n, n);
            var outHat = flows.Slice(3 * n, n);
            var state = buffer.Slice(2 * n * f + 2 * f + 4 * n, f * dv); // (features, valueDim)
            for (int it = 0; it < items; it++)
            {
                var q = query.Slice(it * n * f, n * f);
                var k = key.Slice(it * n * f, n * f);
                var v = value.Slice(it * n * dv, n * dv);
                var o = output.Slice(it * n * dv, n * dv);
                TensorPrimitives.Sigmoid(q, pq);
                TensorPrimitives.Sigmoid(k, pk);
                // I and O from the prefix sums of phi(k) and phi(q).
                qRun.Clear();
                kRun.Clear();
                for (int i = 0; i < n; i++)
                {
                    var qi = pq.Slice(i * f, f);
                    var ki = pk.Slice(i * f, f);
                    for (int x = 0; x < f; x++)
                    {
                        qRun[x] += qi[x];
                        kRun[x] += ki[x];
                    }
                    incoming[i] = Dot(qi, kRun);
                    outgoing[i] = Dot(ki, qRun);
                }
                // Ihat and Ohat from the prefix sums of phi(k) c / O and phi(q) c / I.
                qRun.Clear();
                kRun.Clear();
                for (int i = 0; i < n; i++)
                {
                    var qi = pq.Slice(i * f, f);
                    var ki = pk.Slice(i * f, f);
                    float c = i + 1, byI = c / incoming[i], byO = c / outgoing[i];
                    for (int x = 0; x < f; x++)
                    {
                        qRun[x] += qi[x] * byI;
                        kRun[x] += ki[x] * byO;
                    }
                    inHat[i] = Dot(qi, kRun) / c;
                    outHat[i] = Dot(ki, qRun) / c;
                }
                // The prefix softmax of Ohat (running maximum m, running sum l), then
                // R_i = sigmoid(Ihat_i) phi(q_i) S_i / I_i with S_i = sum_{j<=i} phi(k_j) w_j v_j.
                state.Clear();
                float m = float.NegativeInfinity, l = 0f;
                for (int i = 0; i < n; i++)
                {
                    float mNew = MathF.Max(m, outHat[i]);
                    l = l * MathF.Exp(m - mNew) + MathF.Exp(outHat[i] - mNew);
                    m = mNew;
                    float w = MathF.Exp(outHat[i] - m) / l * (i + 1);
                    var ki = pk.Slice(i * f, f);
                    var vi = v.Slice(i * dv, dv);
                    for (int x = 0; x < f; x++)
                    {
                        float kw = ki[x] * w;
                        var row = state.Slice(x * dv, dv);
                        for (int c = 0; c < dv; c++) row[c] += kw * vi[c];
                    }
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
}
