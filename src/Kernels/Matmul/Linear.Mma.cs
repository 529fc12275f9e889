using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Decode;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.TensorCores;
using Half = System.Half;

namespace Managed.Kernels.Matmul;

/// <summary>A loaded <see cref="MmaGemmKernel.GemmKernel"/>.</summary>
internal delegate void MmaGemmLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<Word4> x, ArrayView<Word4> w, ArrayView<float> bias, ArrayView<float> y,
    MmaGemmParams p);

/// <summary>A loaded <see cref="MmaGemmKernel.RoundKernel"/>.</summary>
internal delegate void RoundLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> x, ArrayView<uint> pairs, long count);

// The choice between the tensor-core GEMM (LinearPrecision.WeightType) and the exact kernels,
// in one place.
public static partial class Linear
{
    private const int SlotRounded = 4;

    /// <summary>
    /// Whether a call runs on the tensor cores (<see cref="MmaGemmKernel"/>):
    /// <see cref="LinearPrecision.WeightType"/>, a CUDA device (or, for tests, the ILGPU CPU
    /// accelerator with <see cref="LinearOptions"/>' EmulateTensorCores), fp16 or bf16
    /// weights, more than <see cref="GemvMaxRows"/> rows, k a multiple of 8 and W starting on
    /// 16 bytes (cp.async copies 16-byte chunks of whole rows). x is rounded into the device's
    /// workspace first, so it may start anywhere.
    /// </summary>
    internal static bool UsesTensorCores<TStorage>(ComputeDevice device, LinearPlan plan,
        ArrayView<TStorage> w, LinearOptions options)
        where TStorage : unmanaged =>
        options.Precision == LinearPrecision.WeightType && !plan.IsGemv
        && (device.Ilgpu.AcceleratorType == AcceleratorType.Cuda
            || options.EmulateTensorCores && device.Ilgpu.AcceleratorType == AcceleratorType.CPU)
        && (typeof(TStorage) == typeof(Half) || typeof(TStorage) == typeof(BFloat16))
        && plan.K % 8 == 0 && FlashAttention.StartsOn16Bytes(w);

    /// <summary>Whether a call takes the 128 x 128 blocks: groups of 256 threads fit and the
    /// 128 x 128 grid has at least three blocks per four multiprocessors; else 64 x 64 blocks
    /// (4 times the groups for small m or n: at m 128 the large blocks left most of the H200's
    /// 132 multiprocessors idle). Measured on the H200 (2026-12-03, bench/gpu/gemm-half.sh):
    /// at 128 large blocks (m 1024, n 2048) they ran 1.31-1.42x the small ones, at 48 or fewer
    /// 0.54-0.81x. <paramref name="rows"/> 64 or 128 forces either (where 256 threads fit).
    /// </summary>
    internal static bool UsesLargeBlocks(ComputeDevice device, LinearPlan plan, int rows = 0) =>
        device.Ilgpu.MaxNumThreadsPerGroup >= 256 && (rows == 128 || rows != 64
            && 4L * MmaGemmKernel.Blocks(plan.M, plan.N, 4, 4)
                >= 3L * device.Ilgpu.NumMultiprocessors);

    /// <summary>x rounded to the weight's type into the workspace, then one GEMM launch (after
    /// <see cref="UsesTensorCores"/>).</summary>
    private static void RunTensorCores<TStorage>(ComputeDevice device, LinearPlan plan,
        ArrayView<float> x, ArrayView<TStorage> w, ArrayView<float> bias, ArrayView<float> y,
        int rows)
        where TStorage : unmanaged
    {
        bool cuda = device.Ilgpu.AcceleratorType == AcceleratorType.Cuda;
        bool half = typeof(TStorage) == typeof(Half);
        bool large = UsesLargeBlocks(device, plan, rows);
        var (gemm, round) = (cuda, half) switch
        {
            (true, true) => MmaGemmMethods<TensorCoreHalf>.For(large),
            (true, false) => MmaGemmMethods<TensorCoreBFloat16>.For(large),
            (false, true) => MmaGemmMethods<EmulatedHalf>.For(large),
            (false, false) => MmaGemmMethods<EmulatedBFloat16>.For(large),
        };
        long pairs = (long)plan.M * plan.K / 2;
        var rounded = device.Workspace.Get<uint>(SlotRounded, pairs); // (m, k) 16-bit values
        var stream = device.Ilgpu.DefaultStream;
        int threads = Math.Min(256, device.Ilgpu.MaxNumThreadsPerGroup);
        int groups = (int)Math.Min((pairs + threads - 1) / threads,
            16L * Math.Max(1, device.Ilgpu.NumMultiprocessors));
        device.Kernels.Get<RoundLauncher>(round)(stream, new KernelConfig(groups, threads), x,
            rounded, pairs);

        int tilesM = large ? 4 : 2, warpsN = large ? 4 : 2;
        int chunks = MmaGemmKernel.SharedChunks(tilesM, warpsN);
        // O2, as the tensor-core attention kernels (O1 gave SASS of the same length, ptxas
        // 11.8, sm_90); the dynamic shared memory of a block class is fixed, so the limit is
        // raised once, at load.
        var launch = device.Kernels.Get<MmaGemmLauncher>(gemm, OptimizationLevel.O2,
            16 * chunks);
        if (!plan.HasBias) bias = y; // bound, never read
        var p = new MmaGemmParams(plan.M, plan.N, plan.K, plan.HasBias ? 1 : 0,
            FlashAttention.AddressOf(rounded), FlashAttention.AddressOf(w));
        var config = new KernelConfig(MmaGemmKernel.Blocks(plan.M, plan.N, tilesM, warpsN),
            MmaGemmKernel.Threads(warpsN), SharedMemoryConfig.RequestDynamic<Word4>(chunks));
        launch(stream, config, rounded.Cast<Word4>(), w.Cast<Word4>(), bias, y, p);
    }
}

/// <summary>The tensor-core GEMM kernels of one 16-bit type (with its rounding kernel), made
/// once.</summary>
internal static class MmaGemmMethods<TCore> where TCore : struct, ITensorCoreType
{
    private static readonly MethodInfo s_open = typeof(MmaGemmKernel)
        .GetMethod(nameof(MmaGemmKernel.GemmKernel))!;

    /// <summary>128 x 128 blocks: 8 warps of 64 x 32.</summary>
    public static readonly MethodInfo Large =
        s_open.MakeGenericMethod(typeof(TCore), typeof(Count4), typeof(Count4));

    /// <summary>64 x 64 blocks: 4 warps of 32 x 32.</summary>
    public static readonly MethodInfo Small =
        s_open.MakeGenericMethod(typeof(TCore), typeof(Count2), typeof(Count2));

    /// <summary>x rounded to the type, two values per 32-bit word.</summary>
    public static readonly MethodInfo Round = typeof(MmaGemmKernel)
        .GetMethod(nameof(MmaGemmKernel.RoundKernel))!.MakeGenericMethod(typeof(TCore));

    /// <summary>The GEMM of a block class and the rounding kernel.</summary>
    public static (MethodInfo Gemm, MethodInfo Round) For(bool large) =>
        (large ? Large : Small, Round);
}
