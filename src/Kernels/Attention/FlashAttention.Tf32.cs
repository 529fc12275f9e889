using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
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
    /// <see cref="AttentionOptions"/>' EmulateTensorCores; CUDA devices of compute capability
    /// 8.0 or above), and otherwise the 16-bit tensor-core kernel's domain: softmax
    /// normalization, head and value dims of 64, 80, 96 or 128 each, dense head-major tensors
    /// (no strides, no per-sequence key lengths) under 2^31 elements each, K and V starting on
    /// 16 bytes (cp.async copies 16-byte chunks). Everything else runs the exact fp32 kernels,
    /// with the same variant structs and the same 64-key tiles, so schedules and tile skipping
    /// mean the same on both.
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
        && (device.Accelerator is not CudaAccelerator cuda
            || cuda.Architecture >= CudaArchitecture.SM_80) // mma .tf32 and cp.async
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
        TScore score, TMask mask, TNorm normalizer, TSchedule schedule, AttentionTuning? tuning)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        bool cuda = device.Ilgpu.AcceleratorType == AcceleratorType.Cuda;
        var (warps, stages) = Tf32Layout(device, shape, tuning);
        var method = cuda
            ? MmaTf32PrefillMethods<TensorCoreTf32, TScore, TMask, TNorm, TSchedule>.For(
                shape.HeadDim, shape.ValueDim, warps, stages)
            : MmaTf32PrefillMethods<EmulatedTf32, TScore, TMask, TNorm, TSchedule>.For(
                shape.HeadDim, shape.ValueDim, warps, stages);
        int chunks = MmaTf32PrefillKernel.SharedChunks(shape.HeadDim, shape.ValueDim, stages);
        // O2, as the fp32 attention kernels; the dynamic shared memory of this (dims, stages)
        // class is fixed, so its limit is raised once, at load (KernelCache.Get).
        var kernel = device.Kernels.Get<MmaTf32PrefillLauncher<TScore, TMask, TNorm,
            TSchedule>>(method, OptimizationLevel.O2, 16 * chunks);
        int rows = 16 * warps;
        p = p with { QueryTiles = (shape.SeqQ + rows - 1) / rows };
        int grid = shape.Batch * shape.Heads * p.QueryTiles;
        var config = new KernelConfig(grid, 32 * warps,
            SharedMemoryConfig.RequestDynamic<Word4>(chunks));
        kernel(device.Ilgpu.DefaultStream, config, query, key, value, output, logSumExp,
            rowStats, keyLengths, p, score, mask, normalizer, schedule,
            new MmaTf32PrefillAddresses(AddressOfView(key), AddressOfView(value)));
    }

    /// <summary>
    /// Warps per group (4 or 8: 64 or 128 query rows) and stages of K and V tiles (1 or 2) of
    /// the TF32 prefill: <paramref name="tuning"/>'s TensorCoreRows and TensorCoreStages where
    /// set. Else 4 warps at head and value dims up to 64 (about 160 registers a thread: three
    /// groups of 4 warps to a multiprocessor, where groups of 8 fit one), and above them 8
    /// where groups of 128 rows still give every multiprocessor two (at about 224 registers
    /// two groups of 4 warps or one of 8 fit, and 8 warps load and round each K and V tile
    /// once for twice the rows), else 4; two stages where they take at most
    /// <see cref="Tf32TwoStageBytes"/>, else one. Measured on the H200 (B 1, H 16, N 4096 and
    /// 16384): D = 64 4 warps 84-94 TFLOP/s against 78-86 with 8; D = 128 8 warps 96-103
    /// against 88-93 with 4 and one stage, 59-62 with 4 and two (135 KB: one group of 4 warps
    /// to a multiprocessor); one or two stages within 2 % otherwise. A device whose groups stop
    /// short of 256 threads (the ILGPU CPU accelerator) takes 4 warps.
    /// </summary>
    internal static (int Warps, int Stages) Tf32Layout(ComputeDevice device,
        AttentionShape shape, AttentionTuning? tuning)
    {
        int rows = tuning?.TensorCoreRows ?? 0;
        long groups128 = (long)shape.Batch * shape.Heads * ((shape.SeqQ + 127) / 128);
        int warps = device.Ilgpu.MaxNumThreadsPerGroup < 256 ? 4
            : rows is 64 or 128 ? rows / 16
            : Math.Max(shape.HeadDim, shape.ValueDim) > 64
              && groups128 >= 2L * device.Ilgpu.NumMultiprocessors ? 8 : 4;
        int stages = tuning?.TensorCoreStages ?? 0;
        if (stages == 0)
            stages = 16 * MmaTf32PrefillKernel.SharedChunks(shape.HeadDim, shape.ValueDim, 2)
                <= Tf32TwoStageBytes ? 2 : 1;
        return (warps, stages);
    }

    /// <summary>The most shared memory a group of the TF32 prefill takes by default: 99 KB,
    /// what every sm_80+ GPU grants a group (sm_86 and sm_89 no more; the H200 227 KB), so two
    /// stages run at D = Dv = 64 (68 KB) and 80 (84 KB), one at 96 and 128 (50 and 66 KB).
    /// </summary>
    internal const int Tf32TwoStageBytes = 99 * 1024;

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
    private static readonly MethodInfo?[] s_methods = new MethodInfo?[64];

    // Count types by dim class (64, 80, 96, 128): k-steps of 8 head dims, n-tiles of 8 value
    // dims.
    private static readonly Type[] s_counts =
        [typeof(Count8), typeof(Count10), typeof(Count12), typeof(Count16)];

    /// <summary>The kernel for head and value dims of 64, 80, 96 or 128 each, groups of 4 or
    /// 8 warps and 1 or 2 stages of K and V tiles.</summary>
    public static MethodInfo For(int headDim, int valueDim, int warps = 4, int stages = 1)
    {
        if (warps is not (4 or 8))
            throw new ArgumentOutOfRangeException(nameof(warps), warps, "4 or 8 expected.");
        if (stages is not (1 or 2))
            throw new ArgumentOutOfRangeException(nameof(stages), stages, "1 or 2 expected.");
        if (!MmaTf32PrefillKernel.Fits(headDim, valueDim))
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim,
                $"The TF32 prefill kernel takes head and value dims of 64, 80, 96 or 128, got "
                + $"{headDim} and {valueDim}.");
        int d = MmaTf32PrefillKernel.DimClass(headDim);
        int dv = MmaTf32PrefillKernel.DimClass(valueDim);
        int slot = 32 * (stages - 1) + 16 * (warps / 8) + 4 * d + dv;
        return s_methods[slot] ??= typeof(MmaTf32PrefillKernel)
            .GetMethod(nameof(MmaTf32PrefillKernel.ForwardKernel))!
            .MakeGenericMethod(typeof(TCore), typeof(TScore), typeof(TMask), typeof(TNorm),
                typeof(TSchedule), s_counts[d], s_counts[dv],
                warps == 8 ? typeof(Count8) : typeof(Count4),
                stages == 2 ? typeof(Count2) : typeof(Count1));
    }
}
