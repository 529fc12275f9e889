using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Managed.Kernels.Devices;

/// <summary>
/// One ILGPU context per device kind for the whole process, made on first use and never
/// disposed. Devices of a kind open their accelerators in it, so a kernel compiled once can be
/// loaded by every accelerator of that kind (<see cref="KernelCache"/>); a context per device
/// would recompile every kernel (about 1 s each) for every new device object. A context holds
/// the IR of what it compiled and no device memory: accelerators, and so device memory, are
/// released with their <see cref="ComputeDevice"/>.
/// </summary>
internal static class IlgpuContexts
{
    private static readonly Lazy<Context> s_cuda =
        new(() => Context.Create(b => b.Cuda().EnableAlgorithms()));
    private static readonly Lazy<Context> s_openCL =
        new(() => Context.Create(b => b.OpenCL().EnableAlgorithms()));
    // 32-wide warps and 128-thread groups, so kernels written for GPUs run unchanged.
    private static readonly Lazy<Context> s_cpu = new(() => Context.Create(b =>
        b.CPU(new CPUDevice(32, 4, Math.Max(1, Environment.ProcessorCount))).EnableAlgorithms()));

    /// <summary>The context of <paramref name="kind"/> (Cuda, OpenCL or IlgpuCpu).</summary>
    public static Context For(DeviceKind kind) => kind switch
    {
        DeviceKind.Cuda => s_cuda.Value,
        DeviceKind.OpenCL => s_openCL.Value,
        DeviceKind.IlgpuCpu => s_cpu.Value,
        _ => throw new ArgumentException($"{kind} is not an ILGPU device kind.", nameof(kind)),
    };
}
