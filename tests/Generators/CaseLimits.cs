
namespace Managed.Tests.Generators;

/// <summary>
/// Size limits of generated cases. Backends that emulate GPU threads (ILGPU's CPU accelerator)
/// pass smaller limits than the host SIMD backend.
/// </summary>
/// <param name="MaxSeq">Largest seqQ and seqK.</param>
/// <param name="MaxBatch">Largest batch.</param>
/// <param name="MaxHeads">Largest number of query heads (a power of two, at most 8).</param>
/// <param name="Budget">Largest batch*heads*seqQ*seqK*(headDim+valueDim) of one case: the
/// work of the fp64 reference, which dominates the run time of the suite.</param>
public sealed record CaseLimits(int MaxSeq, int MaxBatch, int MaxHeads, long Budget)
{
    /// <summary>The host SIMD backend's limits: a few ms of reference work per case.</summary>
    public static CaseLimits Host { get; } = new(200, 3, 8, 8_000_000);
}
