
namespace Managed.Kernels.Attention;

/// <summary>Per-call options of attention that are not part of the variant.</summary>
public readonly record struct AttentionOptions
{
    /// <summary>Multiplier of q.k; null means 1/sqrt(headDim).</summary>
    public float? Scale { get; init; }

    /// <summary>Where query rows sit on the key axis; default bottom-right (decode).</summary>
    public QueryAlignment Alignment { get; init; }

    /// <summary>Tile sizes and parallelism: tuning only, never part of the result; null means
    /// <see cref="AttentionTuning.Default"/>.</summary>
    public AttentionTuning? Tuning { get; init; }

    /// <summary>The scale in force for <paramref name="headDim"/>.</summary>
    public float ScaleFor(int headDim) => Scale ?? 1f / MathF.Sqrt(headDim);

    internal void Validate()
    {
        if (Scale is { } s && !float.IsFinite(s))
            throw new ArgumentException($"Scale must be finite, got {s}.", "options");
        if (!Enum.IsDefined(Alignment))
            throw new ArgumentException($"Unknown alignment {Alignment}.", "options");
        Tuning?.Validate();
    }
}

