namespace Managed.Kernels;

/// <summary>Per-call options of attention that are not part of the variant.</summary>
public readonly record struct AttentionOptions
{
    /// <summary>Multiplier of q.k; null means 1/sqrt(headDim).</summary>
    public float? Scale { get; init; }

    /// <summary>Where query rows sit on the key axis; default bottom-right (decode).</summary>
    public QueryAlignment Alignment { get; init; }

    /// <summary>The scale in force for <paramref name="headDim"/>.</summary>
    public float ScaleFor(int headDim) => Scale ?? 1f / MathF.Sqrt(headDim);

    internal void Validate()
    {
        if (Scale is { } s && !float.IsFinite(s))
            throw new ArgumentException($"Scale must be finite, got {s}.", "options");
        if (!Enum.IsDefined(Alignment))
            throw new ArgumentException($"Unknown alignment {Alignment}.", "options");
    }
}

/// <summary>Tile sizes of the tiled kernels: tuning only, never part of the result.</summary>
public sealed record FlashAttentionTuning
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

    /// <summary>The defaults.</summary>
    public static FlashAttentionTuning Default { get; } = new();

    internal void ValidateCpu()
    {
        if (QueryTile <= 0 || QueryTile > 4096)
            throw new ArgumentException($"QueryTile must be in 1..4096, got {QueryTile}.", "tuning");
        if (KeyTile <= 0 || KeyTile % 16 != 0 || KeyTile > 4096)
            throw new ArgumentException(
                $"KeyTile must be a positive multiple of 16 up to 4096, got {KeyTile}.", "tuning");
        if (MaxDegreeOfParallelism == 0 || MaxDegreeOfParallelism < -1)
            throw new ArgumentException(
                $"MaxDegreeOfParallelism must be -1 or positive, got {MaxDegreeOfParallelism}.", "tuning");
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
