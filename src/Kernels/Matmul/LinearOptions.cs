using Managed.Kernels.Devices;
using Managed.Kernels.Simd;

namespace Managed.Kernels.Matmul;

/// <summary>Per-call options of <see cref="Linear"/>; the defaults suit every call.</summary>
public readonly record struct LinearOptions
{
    /// <summary>Host threads; null: all processors.</summary>
    public int? MaxDegreeOfParallelism { get; init; }

    /// <summary>Host threads that stay awake between calls (their team size replaces
    /// MaxDegreeOfParallelism): calls down to <see cref="Linear.WorkersSerialWork"/>
    /// multiply-adds run on them. Null: the thread pool, for calls of at least
    /// <see cref="Linear.PoolSerialWork"/>.</summary>
    public HostWorkers? Workers { get; init; }

    /// <summary>SIMD width of the host kernels (tests pin the narrower ones).</summary>
    public SimdWidth Simd { get; init; }
}
