using System.Collections.Concurrent;
using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends;
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
    // (context, backend target, key) -> compiled code; shared by devices of the same target.
    private static readonly
        ConcurrentDictionary<(Context, string, MethodInfo), Lazy<CompiledKernel>> s_compiled =
            new();

    private readonly Dictionary<MethodInfo, Delegate> _loaded = new();
    private readonly string _target = TargetOf(accelerator);

    /// <summary>Number of targets <paramref name="method"/> has been compiled for in this
    /// process (for tests: 1 after any number of device objects of one target).</summary>
    public static int TimesCompiled(MethodInfo method) =>
        s_compiled.Count(e => e.Key.Item3 == method && e.Value.IsValueCreated);

    /// <summary>Number of kernels loaded on this accelerator.</summary>
    public int Count { get { lock (_loaded) return _loaded.Count; } }

    /// <summary>The launcher of the explicitly grouped kernel <paramref name="method"/> (a
    /// closed generic method: its type arguments are the variant and the specialization):
    /// loaded once per accelerator, compiled once per target.
    /// <typeparamref name="TDelegate"/> is Action&lt;AcceleratorStream, KernelConfig, the
    /// kernel's parameters&gt;.</summary>
    public TDelegate Get<TDelegate>(MethodInfo method) where TDelegate : Delegate
    {
        lock (_loaded)
        {
            if (_loaded.TryGetValue(method, out var launcher)) return (TDelegate)launcher;
            var compiled = s_compiled.GetOrAdd((accelerator.Context, _target, method), _ =>
                new Lazy<CompiledKernel>(() => accelerator.CompileKernel(
                    EntryPointDescription.FromExplicitlyGroupedKernel(method)))).Value;
            var loaded = accelerator.LoadKernel(compiled).CreateLauncherDelegate<TDelegate>();
            _loaded.Add(method, loaded);
            return loaded;
        }
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
