
namespace Managed.Kernels.Attention;

/// <summary>
/// How the attention kernels tile and parallelize a call, in one place for every device: tuning
/// only, never part of the result. The CPU kernel uses all of it but the GPU reduction; ILGPU
/// kernels use fixed tiles and only <see cref="GpuReduction"/>.
/// </summary>
public sealed record AttentionTuning
{
    /// <summary>Query rows per tile (CPU: rows per work item).</summary>
    public int QueryTile { get; init; } = 32;

    /// <summary>Keys per tile; a multiple of 16 on the CPU.</summary>
    public int KeyTile { get; init; } = 64;

    /// <summary>SIMD width of the CPU kernel; Auto picks the widest the CPU accelerates.</summary>
    public Simd.SimdWidth Simd { get; init; }

    /// <summary>Most CPU threads a call uses; -1 means all.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;

    /// <summary>How the ILGPU kernel reduces across a row's threads; Auto picks warp shuffles
    /// where the device supports them (CUDA, CPU accelerator, OpenCL with sub-groups).</summary>
    public GpuRowReduction GpuReduction { get; init; }

    /// <summary>Query rows per group of the tensor-core prefill (CUDA, fp16/bf16): 64 or 128;
    /// 0 (the default) takes 64 up to head dim 128 and 128 above it
    /// (FlashAttention.TensorCoreWarps says why). Also the TF32 prefill's (fp32 with
    /// <see cref="AttentionPrecision.Tf32"/>), whose default is FlashAttention.Tf32Layout's.
    /// </summary>
    public int TensorCoreRows { get; init; }

    /// <summary>Stages of K and V tiles in shared memory of the TF32 prefill (CUDA, fp32 with
    /// <see cref="AttentionPrecision.Tf32"/>): 1 (copies staggered within a tile) or 2 (one
    /// tile ahead); 0 picks by the dims (FlashAttention.Tf32Layout).</summary>
    public int TensorCoreStages { get; init; }

    /// <summary>The defaults.</summary>
    public static AttentionTuning Default { get; } = new();

    internal void Validate()
    {
        if (QueryTile <= 0 || QueryTile > 4096)
            throw new ArgumentException($"QueryTile must be in 1..4096, got {QueryTile}.", "options");
        if (KeyTile <= 0 || KeyTile % 16 != 0 || KeyTile > 4096)
            throw new ArgumentException(
                $"KeyTile must be a positive multiple of 16 up to 4096, got {KeyTile}.", "options");
        if (MaxDegreeOfParallelism == 0 || MaxDegreeOfParallelism < -1)
            throw new ArgumentException(
                $"MaxDegreeOfParallelism must be -1 or positive, got {MaxDegreeOfParallelism}.", "options");
        if (TensorCoreStages is not (0 or 1 or 2))
            throw new ArgumentException(
                $"TensorCoreStages must be 0, 1 or 2, got {TensorCoreStages}.", "options");
        if (!Enum.IsDefined(Simd) || !Enum.IsDefined(GpuReduction))
            throw new ArgumentException(
                $"Unknown Simd ({Simd}) or GpuReduction ({GpuReduction}) value.", "options");
    }
}

/// <summary>Row reductions of the ILGPU kernel.</summary>
public enum GpuRowReduction : byte
{
    /// <summary>Shuffles where supported, else shared memory.</summary>
    Auto,
    /// <summary>Warp shuffles (xor butterflies).</summary>
    Shuffle,
    /// <summary>Shared memory and barriers: works on every OpenCL device.</summary>
    SharedMemory,
}
