using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Decode;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.TensorCores;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Attention;

/// <summary>A loaded TF32 prefill kernel: <see cref="AttentionLauncher{TStorage, TScore, TMask,
/// TNorm, TSchedule}"/>'s arguments over fp32 and the device addresses of K and V.</summary>
internal delegate void MmaTf32PrefillLauncher<TScore, TMask, TNorm, TSchedule>(
    AcceleratorStream stream, KernelConfig config, ArrayView<float> query,
    ArrayView<float> key, ArrayView<float> value, ArrayView<float> output,
    ArrayView<float> logSumExp, ArrayView<float> rowStats, ArrayView<int> keyLengths,
    GpuAttentionParams p, TScore score, TMask mask, TNorm norm, TSchedule schedule,
    MmaTf32PrefillAddresses addresses);

// The opt-in TF32 precision for fp32 Q/K/V: when a call runs on MmaTf32PrefillKernel, its
// launch, and the error bound it is documented and tested against.
public static partial class FlashAttention
{
    /// <summary>u = 2^-11: the largest relative error of rounding an fp32 value to TF32
    /// (nearest; 10 explicit mantissa bits).</summary>
    public const double Tf32Unit = 1.0 / 2048;

    /// <summary>
    /// Δ = (2u + u²) scale maxAbsDot (u = <see cref="Tf32Unit"/>): how far rounding q and k to
    /// TF32 may move a scaled logit s = scale q.k whose Σ_d |q_d k_d| is at most
    /// <paramref name="maxAbsDot"/> (fp32 summation aside), and so how far the log-sum-exp may
    /// move under <see cref="AttentionPrecision.Tf32"/> (the score modifiers shipped are
    /// 1-Lipschitz in s).
    /// </summary>
    public static double Tf32LogitError(double scale, double maxAbsDot) =>
        (2 * Tf32Unit + Tf32Unit * Tf32Unit) * Math.Abs(scale) * maxAbsDot;

    /// <summary>
    /// (e^(2Δ) - 1 + 2u) maxAbsValue, Δ = <see cref="Tf32LogitError"/>: the bound on
    /// |o - o_exact| of an output row under <see cref="AttentionPrecision.Tf32"/>, fp32 terms
    /// aside, where <paramref name="maxAbsDot"/> bounds Σ_d |q_d k_d| and
    /// <paramref name="maxAbsValue"/> bounds |v| over the row's allowed keys. Each logit moves
    /// by at most Δ, so each softmax weight by a factor within e^(±2Δ) and the weighted mean by
    /// (e^(2Δ) - 1) max|v|; rounding V, and P before P V (the sum it is divided by is fp32),
    /// add u max|v| each. Loose by design: rounding errors of random data mostly cancel.
    /// </summary>
    public static double Tf32Bound(double scale, double maxAbsDot, double maxAbsValue) =>
        (Math.Exp(2 * Tf32LogitError(scale, maxAbsDot)) - 1 + 2 * Tf32Unit) * maxAbsValue;

    /// <summary>
    /// Whether a call runs on the TF32 tensor cores (<see cref="MmaTf32PrefillKernel"/>):
    /// <see cref="AttentionOptions.Precision"/> is <see cref="AttentionPrecision.Tf32"/>, fp32
    /// storage, a CUDA device (or, for tests, the ILGPU CPU accelerator with
    /// <see cref="AttentionOptions"/>' EmulateTensorCores), and otherwise the 16-bit tensor-core
    /// kernel's domain: softmax normalization, head and value dims of 64, 80, 96 or 128 each,
    /// dense head-major tensors (no strides, no per-sequence key lengths) under 2^31 elements
    /// each, K and V starting on 16 bytes (cp.async copies 16-byte chunks). Everything else
    /// runs the exact fp32 kernels, with the same variant structs and the same 64-key tiles, so
    /// schedules and tile skipping mean the same on both.
    /// </summary>
    internal static bool UsesTf32<TStorage, TNorm>(ComputeDevice device, AttentionShape shape,
        AttentionGeometry geometry, ArrayView<TStorage> key, ArrayView<TStorage> value,
        AttentionOptions options)
        where TStorage : unmanaged
        where TNorm : struct, INormalizer =>
        options.Precision == AttentionPrecision.Tf32
        && typeof(TStorage) == typeof(float)
        && (device.Ilgpu.AcceleratorType == AcceleratorType.Cuda
            || options.EmulateTensorCores && device.Ilgpu.AcceleratorType == AcceleratorType.CPU)
        && TNorm.IsSoftmax && !TNorm.NeedsLogSumExp
        && MmaTf32PrefillKernel.Fits(shape.HeadDim, shape.ValueDim)
        && geometry.IsDense(shape)
        && shape.QueryLength <= int.MaxValue && shape.KeyLength <= int.MaxValue
        && shape.ValueLength <= int.MaxValue && shape.OutputLength <= int.MaxValue
        && AlignedTo16Bytes(key) && AlignedTo16Bytes(value);

    private static unsafe bool AlignedTo16Bytes<TStorage>(ArrayView<TStorage> view)
        where TStorage : unmanaged =>
        view.Length == 0 || ((long)view.LoadEffectiveAddressAsPtr() & 15) == 0;

    /// <summary>One launch of the TF32 kernel (after <see cref="UsesTf32"/>), with the dynamic
    /// shared memory of its K and V tiles.</summary>
    private static void LaunchTf32<TScore, TMask, TNorm, TSchedule>(ComputeDevice device,
        AttentionShape shape, ArrayView<float> query, ArrayView<float> key,
        ArrayView<float> value, ArrayView<float> output, ArrayView<float> logSumExp,
        ArrayView<float> rowStats, ArrayView<int> keyLengths, GpuAttentionParams p,
        TScore score, TMask mask, TNorm normalizer, TSchedule schedule)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        bool cuda = device.Ilgpu.AcceleratorType == AcceleratorType.Cuda;
        var method = cuda
            ? MmaTf32PrefillMethods<TensorCoreTf32, TScore, TMask, TNorm, TSchedule>.For(
                shape.HeadDim, shape.ValueDim)
            : MmaTf32PrefillMethods<EmulatedTf32, TScore, TMask, TNorm, TSchedule>.For(
                shape.HeadDim, shape.ValueDim);
        // O2, as the fp32 attention kernels (KernelCache.Get).
        var kernel = device.Kernels.Get<MmaTf32PrefillLauncher<TScore, TMask, TNorm,
            TSchedule>>(method, OptimizationLevel.O2);
        // The kernel's own query blocks (64 rows), whatever the fp32 kernels' tiles are.
        int queryTiles = (shape.SeqQ + MmaTf32PrefillKernel.BlockQ - 1)
            / MmaTf32PrefillKernel.BlockQ;
        int grid = shape.Batch * shape.Heads * queryTiles;
        var shared = SharedMemoryConfig.RequestDynamic<Word4>(
            MmaTf32PrefillKernel.SharedChunks(shape.HeadDim, shape.ValueDim));
        kernel(device.Ilgpu.DefaultStream,
            new KernelConfig(grid, MmaTf32PrefillKernel.Threads, shared), query, key, value,
            output, logSumExp, rowStats, keyLengths, p with { QueryTiles = queryTiles }, score,
            mask, normalizer, schedule,
            new MmaTf32PrefillAddresses(AddressOfView(key), AddressOfView(value)));
    }

    private static unsafe long AddressOfView(ArrayView<float> view) =>
        (long)view.LoadEffectiveAddressAsPtr();
}

/// <summary>The TF32 prefill kernels of one variant, made once per (head dim, value dim) class.
/// </summary>
internal static class MmaTf32PrefillMethods<TCore, TScore, TMask, TNorm, TSchedule>
    where TCore : struct, ITf32Core
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate
    where TNorm : struct, INormalizer
    where TSchedule : struct, IKeyTileSchedule
{
    private static readonly MethodInfo?[] s_methods = new MethodInfo?[16];

    // Count types by dim class (64, 80, 96, 128): k-steps of 8 head dims, n-tiles of 8 value
    // dims.
    private static readonly Type[] s_counts =
        [typeof(Count8), typeof(Count10), typeof(Count12), typeof(Count16)];

    /// <summary>The kernel for head and value dims of 64, 80, 96 or 128 each.</summary>
    public static MethodInfo For(int headDim, int valueDim)
    {
        if (!MmaTf32PrefillKernel.Fits(headDim, valueDim))
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim,
                $"The TF32 prefill kernel takes head and value dims of 64, 80, 96 or 128, got "
                + $"{headDim} and {valueDim}.");
        int d = MmaTf32PrefillKernel.DimClass(headDim);
        int dv = MmaTf32PrefillKernel.DimClass(valueDim);
        return s_methods[4 * d + dv] ??= typeof(MmaTf32PrefillKernel)
            .GetMethod(nameof(MmaTf32PrefillKernel.ForwardKernel))!
            .MakeGenericMethod(typeof(TCore), typeof(TScore), typeof(TMask), typeof(TNorm),
                typeof(TSchedule), s_counts[d], s_counts[dv]);
    }
}
