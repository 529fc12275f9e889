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

    /// <summary>The arithmetic: <see cref="LinearPrecision.Exact"/> (the default) or the
    /// opt-in <see cref="LinearPrecision.WeightType"/> (x rounded to fp16/bf16 weights' type
    /// and multiplied on the tensor cores of a CUDA device, prefill rows only; its error bound
    /// is in its documentation); everywhere else the exact kernels run.</summary>
    public LinearPrecision Precision { get; init; }

    /// <summary>Tests: run <see cref="LinearPrecision.WeightType"/>'s tensor-core kernel on the
    /// ILGPU CPU accelerator, its mma, ldmatrix and cp.async emulated (plain loads and warp
    /// shuffles). Never part of the result beyond rounding.</summary>
    internal bool EmulateTensorCores { get; init; }

    /// <summary>Tuning (benchmarks): rows of y per group of the tensor-core GEMM, 64 or 128
    /// (blocks of 64 x 64 or 128 x 128); 0: <see cref="Linear.UsesLargeBlocks"/>' rule.
    /// </summary>
    internal int TensorCoreRows { get; init; }
}
