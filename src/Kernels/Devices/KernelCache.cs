using System.Collections.Concurrent;
using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends;
using ILGPU.Backends.PTX;
using ILGPU.IR.Transformations;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Managed.Kernels.Devices;

/// <summary>
/// The kernels loaded on one accelerator, by kernel method (closed over a family's variant and
/// specialization types), with strong references: ILGPU's own cache is weak and per
/// accelerator, so without this a kernel could be recompiled on any call. Compiled code is
/// shared by every accelerator of the process with the same backend and target (same kind,
/// same device name and, on CUDA, architecture and ISA): a new device object loads it (a module
/// load, milliseconds) instead of compiling it again (about a second per variant).
/// </summary>
internal sealed class KernelCache(Accelerator accelerator)
{
    // (context, backend target, key, level) -> compiled code; shared by devices of the same
    // target.
    private static readonly ConcurrentDictionary<(Context, string, MethodInfo, OptimizationLevel),
        Lazy<CompiledKernel>> s_compiled = new();

    // CUDA compile contexts at O2, for the families that run faster at O2 (see Get).
    private static readonly Lazy<Context> s_cudaO2 =
        new(() => Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2)));

    private readonly Dictionary<MethodInfo, Delegate> _loaded = new();
    private readonly string _target = TargetOf(accelerator);

    /// <summary>Number of targets <paramref name="method"/> has been compiled for in this
    /// process (for tests: 1 after any number of device objects of one target).</summary>
    public static int TimesCompiled(MethodInfo method) =>
        s_compiled.Count(e => e.Key.Item3 == method && e.Value.IsValueCreated);

    /// <summary>The ILGPU optimization level of the contexts' own backends
    /// (<see cref="IlgpuContexts"/>: ILGPU's default).</summary>
    public const OptimizationLevel ContextLevel = OptimizationLevel.O1;

    /// <summary>Whether <paramref name="method"/> is loaded on this accelerator (for tests:
    /// which kernel a call ran).</summary>
    public bool IsLoaded(MethodInfo method) { lock (_loaded) return _loaded.ContainsKey(method); }

    /// <summary>Number of kernels loaded on this accelerator.</summary>
    public int Count { get { lock (_loaded) return _loaded.Count; } }

    /// <summary>The launcher of the explicitly grouped kernel <paramref name="method"/> (a
    /// closed generic method: its type arguments are the variant and the specialization):
    /// loaded once per accelerator, compiled once per target.
    /// <typeparamref name="TDelegate"/> is Action&lt;AcceleratorStream, KernelConfig, the
    /// kernel's parameters&gt;.</summary>
    /// <param name="method">The kernel.</param>
    /// <param name="level">ILGPU's optimization level for it on CUDA: the contexts compile at
    /// <see cref="ContextLevel"/> (O1); a family measured faster at O2 on the H200 asks for
    /// O2 and is compiled by a PTX backend of an O2 context for this accelerator's
    /// architecture, then loaded here. Measured (2026-12-01): exact attention 1.02-1.36x
    /// faster at O2 and chunked linear attention 1.08-1.13x (its output kernel took 255
    /// registers per thread at O1, 96 at O2); decode, GEMM and the model's kernels no faster
    /// or slower (decode within 1 %, GEMM prefill 0.84x). Other kinds ignore it.</param>
    /// <param name="sharedBytes">The most dynamic shared memory a launch of it asks for: on
    /// CUDA, above 48 KB the loaded function's limit is raised to it
    /// (<see cref="CudaSharedMemoryLimit"/>).</param>
    public TDelegate Get<TDelegate>(MethodInfo method,
        OptimizationLevel level = ContextLevel, int sharedBytes = 0) where TDelegate : Delegate
    {
        lock (_loaded)
        {
            if (_loaded.TryGetValue(method, out var launcher)) return (TDelegate)launcher;
            if (accelerator is not CudaAccelerator) level = ContextLevel;
            var compiled = s_compiled.GetOrAdd((accelerator.Context, _target, method, level), _ =>
                new Lazy<CompiledKernel>(() => Compile(method, level))).Value;
            var kernel = accelerator.LoadKernel(compiled);
            if (kernel is CudaKernel cuda) CudaSharedMemoryLimit.Raise(cuda, sharedBytes);
            var loaded = kernel.CreateLauncherDelegate<TDelegate>();
            _loaded.Add(method, loaded);
            return loaded;
        }
    }

    private CompiledKernel Compile(MethodInfo method, OptimizationLevel level)
    {
        var compiled = CompileFor(method, level);
        // Inline-PTX outputs pass through local variables; the driver's JIT keeps them there.
        if (compiled is PTXCompiledKernel ptx) PtxLocalPromotion.Promote(ptx);
        return compiled;
    }

    private CompiledKernel CompileFor(MethodInfo method, OptimizationLevel level)
    {
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
        if (level == ContextLevel) return accelerator.CompileKernel(entry);
        if (level != OptimizationLevel.O2)
            throw new ArgumentOutOfRangeException(nameof(level), level, "O1 or O2 expected.");
        var cuda = (CudaAccelerator)accelerator;
        using var backend = new PTXBackend(s_cudaO2.Value, cuda.Capabilities, cuda.Architecture,
            cuda.InstructionSet, nvvmAPI: null);
        return backend.Compile(entry, default(KernelSpecialization));
    }

    /// <summary>Drops this accelerator's launchers (the compiled code stays shared).</summary>
    public void Clear()
    {
        lock (_loaded) _loaded.Clear();
    }

    private static string TargetOf(Accelerator accelerator) => accelerator switch
    {
        CudaAccelerator cuda =>
            $"cuda/{cuda.Name}/{cuda.Architecture}/{cuda.InstructionSet}",
        CLAccelerator cl => $"opencl/{cl.Name}/{cl.Vendor}/{cl.CLStdVersion}",
        _ => $"{accelerator.AcceleratorType}/{accelerator.Name}/{accelerator.WarpSize}",
    };
}
