using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;

namespace Managed.Tensors;

/// <summary>The linear layer of <c>Managed.Kernels.Matmul</c> on tensors: sizes come from the
/// tensors' dims and are checked, naming the tensor and dimension, before any work.</summary>
public static class TensorLinear
{
    /// <summary>
    /// output = x W^T + bias, as <see cref="Linear"/> does on spans and views:
    /// x (..., k) Float32, weight (n, k) in its stored type (Float32, Float16 or BFloat16:
    /// widened to float in the kernels, never copied), bias null or (n) Float32, output
    /// (..., n) Float32 with x's leading dims (their product is m; zero rows do nothing).
    /// Every tensor is dense (contiguous) and on one device.
    /// </summary>
    /// <exception cref="ArgumentNullException">x, weight or output is null.</exception>
    /// <exception cref="ArgumentException">A rank, dimension, element type or layout
    /// disagrees (the parameter name is the tensor, the message names the dimension), the
    /// tensors are on different devices, or the output overlaps an input.</exception>
    /// <exception cref="ObjectDisposedException">A tensor is disposed.</exception>
    public static void Forward(NdTensor x, NdTensor weight, NdTensor? bias, NdTensor output,
        LinearOptions options = default)
    {
        Check(x, nameof(x), "(..., k)", DataType.Float32);
        Check(weight, nameof(weight), "(n, k)", null);
        Check(output, nameof(output), "(..., n)", DataType.Float32);
        if (bias is not null) Check(bias, nameof(bias), "(n)", DataType.Float32);
        if (weight.Rank != 2)
            throw new ArgumentException(
                $"weight has rank {weight.Rank} {weight.Shape}; expected rank 2 (n, k).",
                nameof(weight));
        int n = weight.Shape[0], k = weight.Shape[1], rank = x.Rank;
        if (n <= 0 || k <= 0)
            throw new ArgumentException(
                $"weight {weight.Shape} must have positive n (dimension 0) and k (dimension 1).",
                nameof(weight));
        if (x.Shape[rank - 1] != k)
            throw new ArgumentException(
                $"x dimension {rank - 1} (k) is {x.Shape[rank - 1]}, but weight has k {k}.",
                nameof(x));
        if (output.Rank != rank)
            throw new ArgumentException(
                $"output has rank {output.Rank} {output.Shape}; expected x's rank {rank}.",
                nameof(output));
        for (int d = 0; d < rank - 1; d++)
            if (output.Shape[d] != x.Shape[d])
                throw new ArgumentException(
                    $"output dimension {d} is {output.Shape[d]}, but x has {x.Shape[d]}.",
                    nameof(output));
        if (output.Shape[rank - 1] != n)
            throw new ArgumentException(
                $"output dimension {rank - 1} (n) is {output.Shape[rank - 1]}, but weight has "
                + $"n {n}.", nameof(output));
        if (bias is not null && (bias.Rank != 1 || bias.Shape[0] != n))
            throw new ArgumentException(
                $"bias {bias.Shape} must be (n) with weight's n {n}.", nameof(bias));
        var device = x.Device;
        foreach (var (t, name) in new[] { (weight, nameof(weight)), (bias, nameof(bias)),
                     (output, nameof(output)) })
            if (t is not null && t.Device != device)
                throw new ArgumentException(
                    $"{name} is on {(t.Device is null ? "the host" : t.Device.Name)}, but x is "
                    + $"on {(device is null ? "the host" : device.Name)}.", name);
        foreach (var (t, name) in new[] { (x, nameof(x)), (weight, nameof(weight)),
                     (bias, nameof(bias)) })
            if (t is not null && Overlaps(output, t))
                throw new ArgumentException($"output overlaps {name}.", nameof(output));
        long rows = x.ElementCount / k;
        if (rows == 0) return;
        if (rows > int.MaxValue)
            throw new ArgumentException($"x has {rows} rows; at most {int.MaxValue}.",
                nameof(x));
        var shape = new LinearShape((int)rows, n, k);
        switch (weight.DataType)
        {
            case DataType.Float16:
                Run<System.Half>(device, shape, x, weight, bias, output, options);
                break;
            case DataType.BFloat16:
                Run<BFloat16>(device, shape, x, weight, bias, output, options);
                break;
            default:
                Run<float>(device, shape, x, weight, bias, output, options);
                break;
        }
    }

    private static void Run<T>(ComputeDevice? device, LinearShape shape, NdTensor x,
        NdTensor weight, NdTensor? bias, NdTensor output, LinearOptions options)
        where T : unmanaged
    {
        if (device is not null)
        {
            using var use = device.Use();
            Linear.Forward(device, shape, x.DeviceExtent<float>(), weight.DeviceExtent<T>(),
                bias is null ? default : bias.DeviceExtent<float>(),
                output.DeviceExtent<float>(), options);
            return;
        }
        Linear.Forward<T>(ComputeDevice.Host, shape, x.HostExtent<float>(),
            weight.HostExtent<T>(), bias is null ? default : bias.HostExtent<float>(),
            output.HostExtent<float>(), options);
        // The spans above do not keep the tensors alive; a finalizer must not free them early.
        GC.KeepAlive(x);
        GC.KeepAlive(weight);
        GC.KeepAlive(bias);
        GC.KeepAlive(output);
    }

    // Tensors on one storage overlap when the element ranges they span meet.
    private static bool Overlaps(NdTensor a, NdTensor b) =>
        ReferenceEquals(a.Storage, b.Storage)
        && a.StorageOffset < b.StorageOffset + b.Shape.Extent
        && b.StorageOffset < a.StorageOffset + a.Shape.Extent;

    private static void Check(NdTensor tensor, string name, string layout, DataType? expected)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        tensor.ThrowIfDisposed();
        if (expected is { } type && tensor.DataType != type)
            throw new ArgumentException($"{name} is {tensor.DataType}; expected {type}.", name);
        if (tensor.Rank < 1)
            throw new ArgumentException($"{name} has rank 0; expected {layout}.", name);
        if (!tensor.Shape.IsContiguous)
            throw new ArgumentException(
                $"{name} {tensor.Shape} is not contiguous; the linear kernels need dense "
                + $"{layout} rows.", name);
    }
}
