
namespace Managed.Kernels.Attention;

/// <summary>Per-call options of attention that are not part of the variant.</summary>
public readonly record struct AttentionOptions
{
    /// <summary>Multiplier of q.k; null means 1/sqrt(headDim).</summary>
    public float? Scale { get; init; }

    /// <summary>Where query rows sit on the key axis; default bottom-right (decode). Ignored
    /// when <see cref="QueryPosition"/> is set.</summary>
    public QueryAlignment Alignment { get; init; }

    /// <summary>Tile sizes and parallelism: tuning only, never part of the result; null means
    /// <see cref="AttentionTuning.Default"/>.</summary>
    public AttentionTuning? Tuning { get; init; }

    /// <summary>
    /// The position of query row 0 on the key axis (row i sits at QueryPosition + i), for
    /// chunked prefill or decode into a cache whose length differs from the keys passed; null
    /// means <see cref="Alignment"/> decides. Masks and score modifiers see these positions.
    /// </summary>
    public int? QueryPosition { get; init; }

    /// <summary>Strides of Q, K, V and the output, and per-sequence key lengths; default:
    /// dense head-major tensors, seqK keys each.</summary>
    public AttentionLayout Layout { get; init; }

    /// <summary>Tests: run the tensor-core prefill kernels (fp16/bf16 storage, and fp32 with
    /// <see cref="AttentionPrecision.Tf32"/>; softmax) on the ILGPU CPU accelerator, their mma,
    /// ldmatrix and cp.async emulated (plain loads and warp shuffles). Never part of the result
    /// beyond rounding.</summary>
    internal bool EmulateTensorCores { get; init; }

    /// <summary>The arithmetic of fp32 Q, K and V: <see cref="AttentionPrecision.Exact"/> (the
    /// default) or the opt-in <see cref="AttentionPrecision.Tf32"/>, which applies to fp32
    /// storage on a CUDA device only (exact attention with softmax; see
    /// <see cref="FlashAttention.UsesTf32"/>); everywhere else the exact fp32 kernels run.
    /// </summary>
    public AttentionPrecision Precision { get; init; }

    /// <summary>The position of query row 0 for <paramref name="shape"/> (with all seqK keys;
    /// per-sequence key lengths shift it under bottom-right alignment).</summary>
    public int QueryOffsetFor(AttentionShape shape) =>
        QueryPosition ?? shape.QueryOffset(Alignment);

    /// <summary>The scale in force for <paramref name="headDim"/>.</summary>
    public float ScaleFor(int headDim) => Scale ?? 1f / MathF.Sqrt(headDim);

    internal void Validate()
    {
        if (Scale is { } s && !float.IsFinite(s))
            throw new ArgumentException($"Scale must be finite, got {s}.", "options");
        if (!Enum.IsDefined(Alignment))
            throw new ArgumentException($"Unknown alignment {Alignment}.", "options");
        if (!Enum.IsDefined(Precision))
            throw new ArgumentException($"Unknown precision {Precision}.", "options");
        if (QueryPosition is < 0)
            throw new ArgumentException(
                $"QueryPosition must be non-negative, got {QueryPosition}.", "options");
        Tuning?.Validate();
    }
}

