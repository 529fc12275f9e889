using ILGPU;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;

namespace Managed.Tensors;

/// <summary>Kernels of <c>Managed.Kernels</c> called on tensors: shapes come from the tensors'
/// dims and are checked, naming the tensor and dimension, before any work.</summary>
public static class TensorAttention
{
    /// <summary>
    /// Attention on tensors, as <see cref="FlashAttention"/>'s Forward does on spans and views:
    /// O_i = sum_j w_ij v_j with the weights of <paramref name="normalizer"/> over the keys the
    /// mask allows, after the score modifier. Layouts:
    /// q (batch, heads, seqQ, headDim), k (batch, kvHeads, seqK, headDim),
    /// v (batch, kvHeads, seqK, valueDim), output (batch, heads, seqQ, valueDim),
    /// logSumExp null or (batch, heads, seqQ). heads must be a multiple of kvHeads. q, k and v
    /// share one element type (Float32, Float16 or BFloat16: widened to float in the kernels);
    /// output and logSumExp are Float32. q, k, v and output may be strided views (such as
    /// <see cref="NdTensor.Transpose"/> of a (batch, seq, heads, dim) tensor, or
    /// <see cref="NdTensor.Narrow"/> of a cache) whose last dimension is contiguous: the kernels
    /// read them in place. logSumExp is contiguous.
    /// </summary>
    /// <exception cref="ArgumentNullException">q, k, v or output is null.</exception>
    /// <exception cref="ArgumentException">A rank or dimension disagrees (the parameter name
    /// is the tensor, the message names the dimension), an element type or layout is not
    /// one the kernels take, or the output overlaps an input.</exception>
    /// <exception cref="ObjectDisposedException">A tensor is disposed.</exception>
    /// <remarks>All tensors on the host run the CPU SIMD kernel; all on one ILGPU device run
    /// there, device-resident (enqueued; a copy to the host waits for it).</remarks>
    public static void Forward<TScore, TMask, TNorm>(
        NdTensor q, NdTensor k, NdTensor v, NdTensor output, NdTensor? logSumExp,
        TScore score, TMask mask, TNorm normalizer, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        CheckTensor(q, nameof(q), 4, "(batch, heads, seqQ, headDim)", q.DataType);
        CheckTensor(k, nameof(k), 4, "(batch, kvHeads, seqK, headDim)", q.DataType);
        CheckTensor(v, nameof(v), 4, "(batch, kvHeads, seqK, valueDim)", q.DataType);
        CheckTensor(output, nameof(output), 4, "(batch, heads, seqQ, valueDim)", DataType.Float32);
        if (logSumExp is not null)
        {
            CheckTensor(logSumExp, nameof(logSumExp), 3, "(batch, heads, seqQ)", DataType.Float32);
            if (!logSumExp.Shape.IsContiguous)
                throw new ArgumentException(
                    $"logSumExp {logSumExp.Shape} is not contiguous.", nameof(logSumExp));
        }

        var shape = new AttentionShape(
            Batch: q.Shape[0], Heads: q.Shape[1], KvHeads: k.Shape[1], SeqQ: q.Shape[2],
            SeqK: k.Shape[2], HeadDim: q.Shape[3], ValueDim: v.Shape[3]);
        CheckDim(q, nameof(q), 0, "batch", shape.Batch, "");
        CheckDim(q, nameof(q), 1, "heads", shape.Heads, "");
        CheckDim(q, nameof(q), 2, "seqQ", shape.SeqQ, "");
        CheckDim(q, nameof(q), 3, "headDim", shape.HeadDim, "");
        CheckDim(k, nameof(k), 0, "batch", shape.Batch, "q");
        CheckDim(k, nameof(k), 1, "kvHeads", shape.KvHeads, "");
        CheckDim(k, nameof(k), 2, "seqK", shape.SeqK, "");
        CheckDim(k, nameof(k), 3, "headDim", shape.HeadDim, "q");
        if (shape.Heads % shape.KvHeads != 0)
            throw new ArgumentException(
                $"k dimension 1 (kvHeads) is {shape.KvHeads}, which does not divide q's heads "
                + $"({shape.Heads}).", nameof(k));
        CheckDim(v, nameof(v), 0, "batch", shape.Batch, "q");
        CheckDim(v, nameof(v), 1, "kvHeads", shape.KvHeads, "k");
        CheckDim(v, nameof(v), 2, "seqK", shape.SeqK, "k");
        CheckDim(v, nameof(v), 3, "valueDim", shape.ValueDim, "");
        CheckDim(output, nameof(output), 0, "batch", shape.Batch, "q");
        CheckDim(output, nameof(output), 1, "heads", shape.Heads, "q");
        CheckDim(output, nameof(output), 2, "seqQ", shape.SeqQ, "q");
        CheckDim(output, nameof(output), 3, "valueDim", shape.ValueDim, "v");
        if (logSumExp is not null)
        {
            CheckDim(logSumExp, nameof(logSumExp), 0, "batch", shape.Batch, "q");
            CheckDim(logSumExp, nameof(logSumExp), 1, "heads", shape.Heads, "q");
            CheckDim(logSumExp, nameof(logSumExp), 2, "seqQ", shape.SeqQ, "q");
        }

        var device = q.Device;
        foreach (var (t, name) in new[] { (k, nameof(k)), (v, nameof(v)), (output, nameof(output)),
                     (logSumExp, nameof(logSumExp)) })
            if (t is not null && t.Device != device)
                throw new ArgumentException(
                    $"{name} is on {(t.Device is null ? "the host" : t.Device.Name)}, but q is on "
                    + $"{(device is null ? "the host" : device.Name)}.", name);
        foreach (var (t, name) in new[] { (q, nameof(q)), (k, nameof(k)), (v, nameof(v)),
                     (logSumExp, nameof(logSumExp)) })
            if (t is not null && Overlaps(output, t))
                throw new ArgumentException($"output overlaps {name}.", nameof(output));
        if (logSumExp is not null && (Overlaps(logSumExp, q) || Overlaps(logSumExp, k) || Overlaps(logSumExp, v)))
            throw new ArgumentException("logSumExp overlaps an input.", nameof(logSumExp));
        options = options with
        {
            Layout = options.Layout with
            {
                Query = RowsOf(q), Key = RowsOf(k), Value = RowsOf(v), Output = RowsOf(output),
            },
        };
        switch (q.DataType)
        {
            case DataType.Float16:
                Run<System.Half, TScore, TMask, TNorm>(device, shape, q, k, v, output, logSumExp,
                    score, mask, normalizer, options);
                break;
            case DataType.BFloat16:
                Run<BFloat16, TScore, TMask, TNorm>(device, shape, q, k, v, output, logSumExp,
                    score, mask, normalizer, options);
                break;
            default:
                Run<float, TScore, TMask, TNorm>(device, shape, q, k, v, output, logSumExp,
                    score, mask, normalizer, options);
                break;
        }
    }

    private static void Run<T, TScore, TMask, TNorm>(ComputeDevice? device, AttentionShape shape,
        NdTensor q, NdTensor k, NdTensor v, NdTensor output, NdTensor? logSumExp, TScore score,
        TMask mask, TNorm normalizer, AttentionOptions options)
        where T : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        if (device is not null)
        {
            using var use = device.Use();
            FlashAttention.Forward(device, shape, q.DeviceExtent<T>(), k.DeviceExtent<T>(),
                v.DeviceExtent<T>(), output.DeviceExtent<float>(),
                logSumExp is null ? default : logSumExp.DeviceExtent<float>(), score, mask,
                normalizer, options);
            return;
        }
        FlashAttention.Forward<T, TScore, TMask, TNorm>(ComputeDevice.Host, shape,
            q.HostExtent<T>(), k.HostExtent<T>(), v.HostExtent<T>(), output.HostExtent<float>(),
            logSumExp is null ? default : logSumExp.HostExtent<float>(), score, mask, normalizer,
            options);
        // The spans above do not keep the tensors alive; a finalizer must not free them early.
        GC.KeepAlive(q);
        GC.KeepAlive(k);
        GC.KeepAlive(v);
        GC.KeepAlive(output);
        GC.KeepAlive(logSumExp);
    }

    // Rows of a (batch, heads, rows, dim) tensor whose last dimension is contiguous.
    private static RowStrides RowsOf(NdTensor t) =>
        new(t.Shape.GetStride(0), t.Shape.GetStride(1), t.Shape.GetStride(2));

    // Tensors on one storage overlap when the element ranges they span meet.
    private static bool Overlaps(NdTensor a, NdTensor b) =>
        ReferenceEquals(a.Storage, b.Storage)
        && a.StorageOffset < b.StorageOffset + b.Shape.Extent
        && b.StorageOffset < a.StorageOffset + a.Shape.Extent;

    private static void CheckTensor(NdTensor tensor, string name, int rank, string layout,
        DataType expected)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        tensor.ThrowIfDisposed();
        if (tensor.DataType != expected)
            throw new ArgumentException(
                $"{name} is {tensor.DataType}; expected {expected}"
                + (name is "k" or "v" ? " (q's element type)." : "."), name);
        if (tensor.Rank != rank)
            throw new ArgumentException(
                $"{name} has rank {tensor.Rank} {tensor.Shape}; expected rank {rank} {layout}.",
                name);
        if (tensor.Shape[rank - 1] > 1 && tensor.Shape.GetStride(rank - 1) != 1)
            throw new ArgumentException(
                $"{name} {tensor.Shape} has stride {tensor.Shape.GetStride(rank - 1)} along its "
                + "last dimension; the kernels need it contiguous (stride 1).", name);
    }

    // source is the tensor the expected value came from ("" when it is the defining tensor,
    // where only positivity is checked).
    private static void CheckDim(
        NdTensor tensor, string name, int dim, string dimName, int expected, string source)
    {
        int actual = tensor.Shape[dim];
        if (actual <= 0)
            throw new ArgumentException(
                $"{name} dimension {dim} ({dimName}) is {actual}; it must be positive.", name);
        if (actual != expected)
            throw new ArgumentException(
                $"{name} dimension {dim} ({dimName}) is {actual}, but {source} has {dimName} "
                + $"{expected}.", name);
    }
}
