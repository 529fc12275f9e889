namespace Managed.Kernels.Backends;

/// <summary>Opens backends by kind. Each call returns a new, owned device: dispose it.</summary>
public static class Devices
{
    /// <summary>Opens <paramref name="kind"/>; Auto tries CUDA, then OpenCL, then the host SIMD path.</summary>
    /// <exception cref="InvalidOperationException">The requested device is not present.</exception>
    public static IKernelBackend Open(DeviceKind kind = DeviceKind.Auto, FlashAttentionTuning? tuning = null) =>
        kind switch
        {
            DeviceKind.HostSimd => new HostBackend(tuning),
            DeviceKind.Auto => (IKernelBackend?)IlgpuBackend.TryOpenGpu(tuning) ?? new HostBackend(tuning),
            _ => IlgpuBackend.Open(kind, tuning),
        };
}
