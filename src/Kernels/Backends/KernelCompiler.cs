using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Backends;

/// <summary>
/// Compiles the ILGPU attention kernel of a variant to PTX or OpenCL C with no device present,
/// so a construct that only a GPU backend rejects (a missing intrinsic, a throw, a class) is
/// found on any machine. Each call uses a fresh context: reusing one after a failed compile
/// gives spurious errors.
/// </summary>
public static class KernelCompiler
{
    /// <summary>PTX of the kernel for (TScore, TMask) with tiles for head dims up to
    /// <paramref name="maxDim"/>, for sm_80 / PTX ISA 8.0 (what ILGPU 1.5.3 targets on Hopper too).</summary>
    public static string CompilePtx<TScore, TMask, TNorm>(int maxDim = 64, bool shuffle = true)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        using var context = Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_80),
            CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(KernelMethod<TScore, TMask, TNorm>(maxDim, shuffle));
        var compiled = (PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
        return compiled.PTXAssembly;
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
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(KernelMethod<TScore, TMask, TNorm>(maxDim, subGroups));
        var compiled = (CLCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
        return compiled.Source;
    }

    private static System.Reflection.MethodInfo KernelMethod<TScore, TMask, TNorm>(int maxDim, bool shuffle)
    {
        // The same choice as IlgpuBackend: register-tiled up to 128 dims, general tiles above.
        Type reduce = shuffle ? typeof(ShuffleReduction) : typeof(SharedMemoryReduction);
        if (maxDim > 128)
            return typeof(FlashAttentionIlgpu).GetMethod(nameof(FlashAttentionIlgpu.ForwardKernel))!
                .MakeGenericMethod(typeof(TScore), typeof(TMask), typeof(TNorm), typeof(GpuTile256), reduce);
        Type cols = maxDim <= 64 ? typeof(FastColumns64) : typeof(FastColumns128);
        return typeof(FlashAttentionIlgpuFast).GetMethod(nameof(FlashAttentionIlgpuFast.ForwardKernel))!
            .MakeGenericMethod(typeof(TScore), typeof(TMask), typeof(TNorm), cols, reduce);
    }
}
