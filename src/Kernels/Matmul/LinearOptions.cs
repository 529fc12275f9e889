using Managed.Kernels.Simd;

namespace Managed.Kernels.Matmul;

/// <summary>Per-call options of <see cref="Linear"/>; the defaults suit every call.</summary>
public readonly record struct LinearOptions
{
    /// <summary>Host threads; null: all processors.</summary>
    public int? MaxDegreeOfParallelism { get; init; }

    /// <summary>SIMD width of the host kernels (tests pin the narrower ones).</summary>
    public SimdWidth Simd { get; init; }
}
