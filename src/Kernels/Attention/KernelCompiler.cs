using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Attention;

/// <summary>
/// Compiles the ILGPU attention kernel of a variant to PTX or OpenCL C with no device present,
/// so a construct that only a GPU backend rejects (a missing intrinsic, a throw, a class) is
/// found on any machine (tests, and the front end's PTX dump). Each call uses a fresh context:
/// reusing one after a failed compile gives spurious errors.
/// </summary>
internal static class KernelCompiler
{
    /// <summary>PTX of the kernel for (TScore, TMask) with tiles for head dims up to
    /// <paramref name="maxDim"/>, for sm_80 / PTX ISA 8.0 (what ILGPU 1.5.3 targets on Hopper too).</summary>
    public static string CompilePtx<TScore, TMask, TNorm>(int maxDim = 64, bool shuffle = true)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer =>
        CompilePtx<Float32Element, float, TScore, TMask, TNorm>(maxDim, shuffle);

    /// <summary>PTX of the kernel specialized on the storage type of Q, K and V.</summary>
    public static string CompilePtx<TElement, TStorage, TScore, TMask, TNorm>(int maxDim = 64,
        bool shuffle = true, bool strided = false)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        using var context = Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_80),
            CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(
            KernelMethods<TElement, TStorage, TScore, TMask, TNorm, KeyRangeSchedule>
                .For(maxDim, shuffle, strided));
        var compiled = (PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
        return compiled.PTXAssembly;
    }

    /// <summary>PTX of any explicitly grouped kernel method (the decode family's, for one),
    /// as the device loads it (inline-PTX outputs in registers: <see cref="PtxLocalPromotion"/>).
    /// </summary>
    public static string CompilePtx(MethodInfo kernel)
    {
        using var context = Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_80),
            CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
        return PtxLocalPromotion.Promote(
            ((PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization))).PTXAssembly);
    }

    /// <summary>OpenCL C of the kernel, for an OpenCL 2.0 device with or without sub-groups.</summary>
    public static string CompileOpenCL<TScore, TMask, TNorm>(int maxDim = 64, bool subGroups = false)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        using var context = Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        var caps = new CLCapabilityContext(false, false, false, subGroups, false);
        using var backend = new CLBackend(context, caps, CLDeviceVendor.Other, CLCVersion.CL20);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(KernelMethods<Float32Element, float, TScore, TMask, TNorm, KeyRangeSchedule>
                .For(maxDim, subGroups));
        var compiled = (CLCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
        return compiled.Source;
    }
}

/// <summary>
/// The attention kernel methods of one variant, closed over it and each specialization, made
/// once (reflection allocates; a call must not): register-tiled up to 128 dims, the general
/// tiled kernel above; shuffle or shared-memory reductions.
/// </summary>
internal static class KernelMethods<TElement, TStorage, TScore, TMask, TNorm, TSchedule>
    where TElement : struct, IElement<TStorage>
    where TStorage : unmanaged
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate
    where TNorm : struct, INormalizer
    where TSchedule : struct, IKeyTileSchedule
{
    private static readonly MethodInfo?[] s_methods = new MethodInfo?[12];

    /// <summary>The kernel for head dims up to <paramref name="maxDim"/>; strided (row strides,
    /// key lengths, 64-bit offsets) or dense rows (the general kernel is always strided).</summary>
    public static MethodInfo For(int maxDim, bool shuffle, bool strided = false)
    {
        strided |= maxDim > 128;
        int slot = ((maxDim <= 64 ? 0 : maxDim <= 128 ? 1 : 2) * 2 + (shuffle ? 1 : 0)) * 2
            + (strided ? 1 : 0);
        return s_methods[slot] ??= Make(maxDim, shuffle, strided);
    }

    private static MethodInfo Make(int maxDim, bool shuffle, bool strided)
    {
        Type reduce = shuffle ? typeof(ShuffleReduction) : typeof(SharedMemoryReduction);
        if (maxDim > 128)
            return typeof(TiledKernel).GetMethod(nameof(TiledKernel.ForwardKernel))!
                .MakeGenericMethod(typeof(TElement), typeof(TStorage), typeof(TScore),
                    typeof(TMask), typeof(TNorm), typeof(TSchedule), typeof(GpuTile256), reduce);
        Type cols = maxDim <= 64 ? typeof(RegisterTileColumns64) : typeof(RegisterTileColumns128);
        return typeof(RegisterTiledKernel).GetMethod(nameof(RegisterTiledKernel.ForwardKernel))!
            .MakeGenericMethod(typeof(TElement), typeof(TStorage), typeof(TScore), typeof(TMask),
                typeof(TNorm), typeof(TSchedule), strided ? typeof(StridedRows) : typeof(DenseRows),
                cols, reduce);
    }
}
