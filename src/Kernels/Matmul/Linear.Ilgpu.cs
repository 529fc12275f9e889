using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;

namespace Managed.Kernels.Matmul;

internal delegate void LinearLauncher<TStorage>(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> x, ArrayView<TStorage> w, ArrayView<float> bias, ArrayView<float> y,
    LinearParams p)
    where TStorage : unmanaged;

// The ILGPU path: one launch, the GEMV kernel (a warp per output feature) for a few rows, the
// tiled GEMM kernel for more. Runs under the device's lease.
public static partial class Linear
{
    private const int SlotInput = 0, SlotWeight = 1, SlotBias = 2, SlotOutput = 3;

    private static void RunIlgpu<TElement, TStorage>(ComputeDevice device, LinearPlan plan,
        ArrayView<float> x, ArrayView<TStorage> w, ArrayView<float> bias, ArrayView<float> y)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        bool words = GemvKernel.WordsFit(plan.K, Marshal.SizeOf<TStorage>(),
            ((IContiguousArrayView)x).IndexInBytes, ((IContiguousArrayView)w).IndexInBytes);
        var p = new LinearParams(plan.M, plan.N, plan.K, plan.HasBias ? 1 : 0, words ? 1 : 0);
        if (!plan.HasBias) bias = x; // bound, never read
        KernelConfig config;
        MethodInfo method;
        if (plan.IsGemv)
        {
            // Shuffles on CUDA; shared memory elsewhere (see GemvKernel).
            bool shuffle = device.Ilgpu.AcceleratorType == AcceleratorType.Cuda;
            method = LinearMethods<TElement, TStorage>.Gemv(shuffle);
            config = new KernelConfig((plan.N + GemvKernel.Warps - 1) / GemvKernel.Warps,
                GemvKernel.Threads);
        }
        else
        {
            method = LinearMethods<TElement, TStorage>.Gemm;
            long tiles = (long)((plan.M + GemmKernel.Tile - 1) / GemmKernel.Tile)
                * ((plan.N + GemmKernel.Tile - 1) / GemmKernel.Tile);
            config = new KernelConfig(checked((int)tiles), GemmKernel.Threads);
        }
        var launch = device.Kernels.Get<LinearLauncher<TStorage>>(method);
        launch(device.Ilgpu.DefaultStream, config, x, w, bias, y, p);
    }
}

/// <summary>The linear kernels of one weight storage type, made once.</summary>
internal static class LinearMethods<TElement, TStorage>
    where TElement : struct, IElement<TStorage>
    where TStorage : unmanaged
{
    private static readonly MethodInfo s_gemvShuffle = Close(
        typeof(GemvKernel).GetMethod(nameof(GemvKernel.Gemv))!, typeof(ShuffleReduction));
    private static readonly MethodInfo s_gemvShared = Close(
        typeof(GemvKernel).GetMethod(nameof(GemvKernel.Gemv))!, typeof(SharedMemoryReduction));

    /// <summary>The GEMV kernel with shuffle or shared-memory reductions.</summary>
    public static MethodInfo Gemv(bool shuffle) => shuffle ? s_gemvShuffle : s_gemvShared;

    /// <summary>The tiled GEMM kernel.</summary>
    public static readonly MethodInfo Gemm = typeof(GemmKernel)
        .GetMethod(nameof(GemmKernel.Gemm))!.MakeGenericMethod(typeof(TElement), typeof(TStorage));

    private static MethodInfo Close(MethodInfo open, Type reduce) =>
        open.MakeGenericMethod(typeof(TElement), typeof(TStorage), reduce);
}
