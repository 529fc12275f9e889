
namespace Managed.Kernels.Devices;

/// <summary>What kind of processor a <see cref="ComputeDevice"/> is.</summary>
public enum DeviceKind : byte
{
    /// <summary>CUDA if present, else OpenCL, else the host CPU (only for opening).</summary>
    Auto,
    /// <summary>The host CPU through the SIMD kernels (no ILGPU).</summary>
    Host,
    /// <summary>An NVIDIA GPU through ILGPU's CUDA backend.</summary>
    Cuda,
    /// <summary>An OpenCL device through ILGPU's OpenCL backend.</summary>
    OpenCL,
    /// <summary>ILGPU's CPU accelerator: the GPU kernels emulated on the CPU (exact, slow).
    /// </summary>
    IlgpuCpu,
}

/// <summary>A device that <see cref="ComputeDevice.List"/> found: open it with
/// <see cref="ComputeDevice.Open(DeviceKind, int)"/> and (<see cref="Kind"/>,
/// <see cref="Index"/>).</summary>
/// <param name="Kind">The kind (never Auto).</param>
/// <param name="Index">The index among devices of that kind, from 0.</param>
/// <param name="Name">The name the driver reports.</param>
/// <param name="MemoryBytes">Device memory in bytes (the host's usable memory for Host).
/// </param>
public readonly record struct DeviceInfo(DeviceKind Kind, int Index, string Name, long MemoryBytes)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"{Kind}:{Index} {Name} ({MemoryBytes / (1L << 20)} MiB)";
}
