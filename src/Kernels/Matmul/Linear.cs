using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Half = System.Half;

namespace Managed.Kernels.Matmul;

/// <summary>
/// The linear layer of a transformer: y[i, j] = sum_k x[i, k] W[j, k] (+ bias[j]), with x
/// (m, k) and y (m, n) float and W (n, k) stored as nn.Linear stores it, in float,
/// <see cref="Half"/> or <see cref="BFloat16"/>. Weights stay in their stored type and are
/// widened to float in registers (exactly); products are accumulated in float. A few rows
/// (decode) run a GEMV that streams the weights once; more rows (prefill) a blocked GEMM, or,
/// opt-in (<see cref="LinearPrecision.WeightType"/>), fp16/bf16 weights on the tensor cores
/// of a CUDA device with x rounded to their type.
/// The host runs SIMD kernels on all processors; an ILGPU device runs one kernel per shape
/// class, compiled once per device kind.
/// </summary>
public static partial class Linear
{
    /// <summary>Most rows of x the ILGPU GEMV kernel takes (one pass over the weights);
    /// more rows run the tiled GEMM kernel. The host GEMV takes up to 16 rows (4 at a time
    /// per weight load), more run the host GEMM.</summary>
    public const int GemvMaxRows = 8;

    /// <summary>
    /// y = x W^T + bias on host spans: x (m, k), weight (n, k), bias empty (none) or (n),
    /// y (m, n). On an ILGPU device everything is staged through the device's workspace (the
    /// weights too, on every call: keep them on the device and pass views instead).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A size or length disagrees with the shape (the
    /// message names the dimension), y overlaps an input, an option is not valid, or
    /// <typeparamref name="TWeight"/> is not float, Half or BFloat16; thrown before anything
    /// is written.</exception>
    public static void Forward<TWeight>(ComputeDevice device, LinearShape shape,
        ReadOnlySpan<float> x, ReadOnlySpan<TWeight> weight, ReadOnlySpan<float> bias,
        Span<float> y, LinearOptions options = default)
        where TWeight : unmanaged
    {
        ArgumentNullException.ThrowIfNull(device);
        CheckWeightType<TWeight>();
        using var lease = device.Use();
        var plan = Validate(shape, x.Length, weight.Length, bias.Length, y.Length, options);
        var wBytes = MemoryMarshal.AsBytes(weight);
        var yBytes = MemoryMarshal.AsBytes(y);
        if (yBytes.Overlaps(MemoryMarshal.AsBytes(x)) || yBytes.Overlaps(wBytes)
            || yBytes.Overlaps(MemoryMarshal.AsBytes(bias)))
            throw new ArgumentException("y must not overlap x, weight or bias.", nameof(y));
        if (device.IsHost)
        {
            if (typeof(TWeight) == typeof(float))
                ForwardHost<Float32Element, float>(plan, x,
                    MemoryMarshal.Cast<TWeight, float>(weight), bias, y);
            else if (typeof(TWeight) == typeof(Half))
                ForwardHost<Float16Element, Half>(plan, x,
                    MemoryMarshal.Cast<TWeight, Half>(weight), bias, y);
            else
                ForwardHost<BFloat16Element, BFloat16>(plan, x,
                    MemoryMarshal.Cast<TWeight, BFloat16>(weight), bias, y);
            return;
        }
        var ws = device.Workspace;
        var dx = ws.Get<float>(SlotInput, x.Length);
        var dw = ws.Get<TWeight>(SlotWeight, weight.Length);
        var db = bias.IsEmpty ? default : ws.Get<float>(SlotBias, bias.Length);
        var dy = ws.Get<float>(SlotOutput, y.Length);
        dx.CopyFromCPU(x);
        dw.CopyFromCPU(weight);
        if (!bias.IsEmpty) db.CopyFromCPU(bias);
        ForwardDevice(device, plan, dx, dw, db, dy, options);
        dy.CopyToCPU(y);
        device.Ilgpu.Synchronize();
    }

    /// <summary>y = x W^T + bias on views of the device's accelerator (enqueued on its
    /// stream); bias empty or (n). Otherwise as the span overload.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload, the device is the host, or
    /// a view is memory of another accelerator.</exception>
    public static void Forward<TWeight>(ComputeDevice device, LinearShape shape,
        ArrayView<float> x, ArrayView<TWeight> weight, ArrayView<float> bias,
        ArrayView<float> y, LinearOptions options = default)
        where TWeight : unmanaged
    {
        ArgumentNullException.ThrowIfNull(device);
        CheckWeightType<TWeight>();
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        var plan = Validate(shape, x.Length, weight.Length, bias.Length, y.Length, options);
        device.CheckOwns(x, nameof(x));
        device.CheckOwns(weight, nameof(weight));
        device.CheckOwns(bias, nameof(bias));
        device.CheckOwns(y, nameof(y));
        if (Overlaps(y, x) || Overlaps(y, weight) || Overlaps(y, bias))
            throw new ArgumentException("y must not overlap x, weight or bias.", nameof(y));
        ForwardDevice(device, plan, x, weight, bias, y, options);
    }

    private static void ForwardDevice<TWeight>(ComputeDevice device, LinearPlan plan,
        ArrayView<float> x, ArrayView<TWeight> weight, ArrayView<float> bias, ArrayView<float> y,
        LinearOptions options)
        where TWeight : unmanaged
    {
        if (UsesTensorCores(device, plan, weight, options))
        {
            RunTensorCores(device, plan, x, weight, bias, y, options.TensorCoreRows);
            return;
        }
        if (typeof(TWeight) == typeof(float))
            RunIlgpu<Float32Element, float>(device, plan, x, weight.Cast<float>(), bias, y);
        else if (typeof(TWeight) == typeof(Half))
            RunIlgpu<Float16Element, Half>(device, plan, x, weight.Cast<Half>(), bias, y);
        else
            RunIlgpu<BFloat16Element, BFloat16>(device, plan, x, weight.Cast<BFloat16>(), bias,
                y);
    }

    private static void CheckWeightType<TWeight>() where TWeight : unmanaged
    {
        if (typeof(TWeight) != typeof(float) && typeof(TWeight) != typeof(Half)
            && typeof(TWeight) != typeof(BFloat16))
            throw new ArgumentException($"The weights are stored as {typeof(TWeight).Name}; "
                + "the kernels take float, Half or BFloat16.", "weight");
    }

    private static LinearPlan Validate(LinearShape shape, long xLength, long weightLength,
        long biasLength, long yLength, LinearOptions options)
    {
        shape.Validate(nameof(shape));
        int m = shape.M, n = shape.N, k = shape.K;
        CheckLength(xLength, shape.InputLength, "x", $"M {m} x K {k}");
        CheckLength(weightLength, shape.WeightLength, "weight", $"N {n} x K {k}");
        if (biasLength != 0) CheckLength(biasLength, n, "bias", $"N {n} (or empty)");
        CheckLength(yLength, shape.OutputLength, "y", $"M {m} x N {n}");
        if (options.MaxDegreeOfParallelism is < 1)
            throw new ArgumentException(
                $"MaxDegreeOfParallelism must be positive, got {options.MaxDegreeOfParallelism}.",
                nameof(options));
        if (!Enum.IsDefined(options.Precision))
            throw new ArgumentException($"Precision {options.Precision} is not defined.",
                nameof(options));
        if (options.TensorCoreRows is not (0 or 64 or 128))
            throw new ArgumentException(
                $"TensorCoreRows must be 0, 64 or 128, got {options.TensorCoreRows}.",
                nameof(options));
        if (!Enum.IsDefined(options.Simd))
            throw new ArgumentException($"Simd {options.Simd} is not a defined width.",
                nameof(options));
        return new LinearPlan(m, n, k, biasLength != 0,
            options.Workers?.Threads ?? options.MaxDegreeOfParallelism
            ?? Environment.ProcessorCount, options.Simd, options.Workers);
    }

    private static void CheckLength(long actual, long expected, string name, string layout)
    {
        if (actual != expected)
            throw new ArgumentException(
                $"{name} has {actual} elements; expected {expected} = {layout}.", name);
    }

    private static bool Overlaps<TA, TB>(ArrayView<TA> a, ArrayView<TB> b)
        where TA : unmanaged
        where TB : unmanaged
    {
        if (a.Length == 0 || b.Length == 0) return false;
        IContiguousArrayView p = a, q = b;
        return ReferenceEquals(p.Buffer, q.Buffer)
            && p.IndexInBytes < q.IndexInBytes + q.LengthInBytes
            && q.IndexInBytes < p.IndexInBytes + p.LengthInBytes;
    }
}

/// <summary>One validated call: sizes, whether a bias is added, host threads and SIMD width.
/// </summary>
internal readonly record struct LinearPlan(int M, int N, int K, bool HasBias, int Threads,
    Simd.SimdWidth Simd, Devices.HostWorkers? Workers = null)
{
    /// <summary>True for the ILGPU decode shape class: every row in one GEMV pass.</summary>
    public bool IsGemv => M <= Linear.GemvMaxRows;
}
