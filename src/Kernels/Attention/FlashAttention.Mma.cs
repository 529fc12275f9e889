using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Decode;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.TensorCores;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Kernels.Attention;

/// <summary>A loaded tensor-core prefill kernel: <see cref="AttentionLauncher{TStorage,
/// TScore, TMask, TNorm, TSchedule}"/>'s arguments and the device addresses of K and V.
/// </summary>
internal delegate void MmaPrefillLauncher<TStorage, TScore, TMask, TNorm, TSchedule>(
    AcceleratorStream stream, KernelConfig config, ArrayView<TStorage> query,
    ArrayView<TStorage> key, ArrayView<TStorage> value, ArrayView<float> output,
    ArrayView<float> logSumExp, ArrayView<float> rowStats, ArrayView<int> keyLengths,
    GpuAttentionParams p, TScore score, TMask mask, TNorm norm, TSchedule schedule,
    MmaPrefillAddresses addresses)
    where TStorage : unmanaged;

// The choice between the tensor-core prefill kernel and the fp32 kernels, in one place.
public static partial class FlashAttention
{
    /// <summary>
    /// Whether a call runs on the tensor cores (<see cref="MmaPrefillKernel"/>): a CUDA device (or,
    /// for tests, the ILGPU CPU accelerator with <see cref="AttentionOptions"/>'
    /// EmulateTensorCores), fp16 or bf16 storage, softmax normalization, head and value dims of 64,
    /// 80, 96, 128 or 256 each, dense head-major tensors (no strides, no per-sequence key lengths) under
    /// 2^31 elements each, and Q, K and V starting on 16 bytes (cp.async copies 16-byte chunks).
    /// Everything else runs the fp32 kernels (the 16-bit values widened on load), with the same
    /// variant structs and the same 64-key tiles, so schedules and tile skipping mean the same on
    /// both.
    /// </summary>
    internal static bool UsesTensorCores<TStorage, TNorm>(ComputeDevice device,
        AttentionShape shape, AttentionGeometry geometry, ArrayView<TStorage> query,
        ArrayView<TStorage> key, ArrayView<TStorage> value, AttentionOptions options)
        where TStorage : unmanaged
        where TNorm : struct, INormalizer =>
        (device.Ilgpu.AcceleratorType == AcceleratorType.Cuda
            || options.EmulateTensorCores && device.Ilgpu.AcceleratorType == AcceleratorType.CPU)
        && (typeof(TStorage) == typeof(Half) || typeof(TStorage) == typeof(BFloat16))
        && TNorm.IsSoftmax && !TNorm.NeedsLogSumExp
        && MmaPrefillKernel.Fits(shape.HeadDim, shape.ValueDim)
        && geometry.IsDense(shape)
        && shape.QueryLength <= int.MaxValue && shape.KeyLength <= int.MaxValue
        && shape.ValueLength <= int.MaxValue && shape.OutputLength <= int.MaxValue
        && StartsOn16Bytes(query) && StartsOn16Bytes(key) && StartsOn16Bytes(value);

    /// <summary>The relative rounding of the attention weights P before P V when a call of
    /// this storage type and shape may run on the tensor cores of <paramref name="device"/>
    /// (2^-11 for fp16, 2^-8 for bf16; see <see cref="UsesTensorCores"/>), else 0: the
    /// tolerance the checks add (times max |v|).</summary>
    internal static double WeightRounding<TStorage>(ComputeDevice device, AttentionShape shape)
        where TStorage : unmanaged =>
        device.Accelerator?.AcceleratorType != AcceleratorType.Cuda
            || !MmaPrefillKernel.Fits(shape.HeadDim, shape.ValueDim) ? 0
        : typeof(TStorage) == typeof(Half) ? 1.0 / (1 << 11)
        : typeof(TStorage) == typeof(BFloat16) ? 1.0 / (1 << 8) : 0;

    internal static unsafe bool StartsOn16Bytes<TStorage>(ArrayView<TStorage> view)
        where TStorage : unmanaged =>
        view.Length == 0 || ((long)view.LoadEffectiveAddressAsPtr() & 15) == 0;

    internal static unsafe long AddressOf<TStorage>(ArrayView<TStorage> view)
        where TStorage : unmanaged => (long)view.LoadEffectiveAddressAsPtr();

    /// <summary>One launch of the tensor-core kernel (after <see cref="UsesTensorCores"/>).
    /// </summary>
    private static void LaunchTensorCores<TStorage, TScore, TMask, TNorm, TSchedule>(
        ComputeDevice device, AttentionShape shape, ArrayView<TStorage> query,
        ArrayView<TStorage> key, ArrayView<TStorage> value, ArrayView<float> output,
        ArrayView<float> logSumExp, ArrayView<float> rowStats, ArrayView<int> keyLengths,
        GpuAttentionParams p, TScore score, TMask mask, TNorm normalizer, TSchedule schedule,
        AttentionTuning? tuning)
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        bool cuda = device.Ilgpu.AcceleratorType == AcceleratorType.Cuda;
        bool half = typeof(TStorage) == typeof(Half);
        int warps = TensorCoreWarps(device, shape.HeadDim, tuning?.TensorCoreRows ?? 0);
        var method = (cuda, half) switch
        {
            (true, true) => MmaPrefillMethods<TStorage, TensorCoreHalf, TScore, TMask, TNorm,
                TSchedule>.For(shape.HeadDim, shape.ValueDim, warps),
            (true, false) => MmaPrefillMethods<TStorage, TensorCoreBFloat16, TScore, TMask,
                TNorm, TSchedule>.For(shape.HeadDim, shape.ValueDim, warps),
            (false, true) => MmaPrefillMethods<TStorage, EmulatedHalf, TScore, TMask, TNorm,
                TSchedule>.For(shape.HeadDim, shape.ValueDim, warps),
            (false, false) => MmaPrefillMethods<TStorage, EmulatedBFloat16, TScore, TMask,
                TNorm, TSchedule>.For(shape.HeadDim, shape.ValueDim, warps),
        };
        int chunks = MmaPrefillKernel.SharedChunks(shape.HeadDim, shape.ValueDim, warps);
        // O2, as the fp32 attention kernels (KernelCache.Get); the dynamic shared memory of
        // this (dims, warps) class is fixed, so the limit is raised once, at load.
        var kernel = device.Kernels.Get<MmaPrefillLauncher<TStorage, TScore, TMask, TNorm,
            TSchedule>>(method, OptimizationLevel.O2, 16 * chunks);
        int rows = 16 * warps;
        p = p with { QueryTiles = (shape.SeqQ + rows - 1) / rows };
        int grid = shape.Batch * shape.Heads * p.QueryTiles;
        var config = new KernelConfig(grid, 32 * warps,
            SharedMemoryConfig.RequestDynamic<Word4>(chunks));
        kernel(device.Ilgpu.DefaultStream, config, query, key, value, output, logSumExp,
            rowStats, keyLengths, p, score, mask, normalizer, schedule,
            new MmaPrefillAddresses(AddressOf(key), AddressOf(value)));
    }

    /// <summary>Warps per group of the tensor-core prefill: 4 (64 query rows) up to head dim
    /// 128, 8 (128 rows: each K and V tile loaded once for twice the rows) above it;
    /// <paramref name="rows"/> 64 or 128 forces either. Measured on the H200 (2026-12-03, B 1,
    /// H 16, N 1024-16384, fp16 and bf16): at D 64 and 128, 128 rows ran 0.83-1.05x of 64
    /// (faster only at D 64, N 16384, not causal), its 256-thread groups needing 192 registers
    /// per thread at D 128 (one group per multiprocessor); at D 256, where 64 rows' 169 KB of
    /// shared memory already allows one group per multiprocessor, 128 rows (202 KB) ran
    /// 1.13-1.31x of 64. A device whose groups stop short of 256 threads (the ILGPU CPU
    /// accelerator) always takes 4.</summary>
    internal static int TensorCoreWarps(ComputeDevice device, int headDim, int rows) =>
        device.Ilgpu.MaxNumThreadsPerGroup < 256 ? 4
        : rows == 128 || rows != 64 && headDim > 128 ? 8 : 4;
}

/// <summary>The tensor-core prefill kernels of one variant and 16-bit type, made once per
/// (head dim, value dim) class.</summary>
internal static class MmaPrefillMethods<TStorage, TCore, TScore, TMask, TNorm, TSchedule>
    where TStorage : unmanaged
    where TCore : struct, ITensorCoreType
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate
    where TNorm : struct, INormalizer
    where TSchedule : struct, IKeyTileSchedule
{
    private static readonly MethodInfo?[] s_methods = new MethodInfo?[50];

    // Count types by dim class (64, 80, 96, 128, 256): k-steps of 16 head dims, n-tiles of 8
    // value dims.
    private static readonly Type[] s_steps =
        [typeof(Count4), typeof(Count5), typeof(Count6), typeof(Count8), typeof(Count16)];
    private static readonly Type[] s_tiles =
        [typeof(Count8), typeof(Count10), typeof(Count12), typeof(Count16), typeof(Count32)];

    /// <summary>The kernel for head and value dims of 64, 80, 96, 128 or 256 each and groups of
    /// 4 or 8 warps.</summary>
    public static MethodInfo For(int headDim, int valueDim, int warps = 4)
    {
        if (warps is not (4 or 8))
            throw new ArgumentOutOfRangeException(nameof(warps), warps, "4 or 8 expected.");
        if (!MmaPrefillKernel.Fits(headDim, valueDim))
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim,
                $"The tensor-core prefill kernel takes head and value dims of 64, 80, 96, 128 "
                + $"or 256, got {headDim} and {valueDim}.");
        int d = MmaPrefillKernel.DimClass(headDim), dv = MmaPrefillKernel.DimClass(valueDim);
        return s_methods[25 * (warps / 8) + 5 * d + dv] ??= typeof(MmaPrefillKernel)
            .GetMethod(nameof(MmaPrefillKernel.ForwardKernel))!
            .MakeGenericMethod(typeof(TStorage), typeof(TCore), typeof(TScore), typeof(TMask),
                typeof(TNorm), typeof(TSchedule), s_steps[d], s_tiles[dv],
                warps == 8 ? typeof(Count8) : typeof(Count4));
    }
}
