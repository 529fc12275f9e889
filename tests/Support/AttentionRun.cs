using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;

namespace Managed.Tests.Support;

/// <summary>The output (batch, heads, seqQ, valueDim) and log-sum-exp (batch, heads, seqQ) of one call.</summary>
public sealed record AttentionResult(float[] Output, float[] LogSumExp);

/// <summary>Helpers that allocate the outputs of a call and run it.</summary>
public static class AttentionRun
{
    /// <summary>Sentinel that pre-fills outputs, so unwritten elements stand out.</summary>
    public const float Sentinel = 12345.5f;

    /// <summary>Runs <paramref name="variant"/> on <paramref name="backend"/> with the case's data.</summary>
    public static AttentionResult Run(TestDevice backend, IAttentionVariant variant,
        AttentionCase c, AttentionOptions? options = null) =>
        Run(backend, variant, c.Shape, c.Query, c.Key, c.Value, options ?? c.Options);

    /// <summary>Runs <paramref name="variant"/> on explicit tensors.</summary>
    public static AttentionResult Run(TestDevice backend, IAttentionVariant variant,
        AttentionShape shape, float[] query, float[] key, float[] value, AttentionOptions options)
    {
        var (output, lse) = Allocate(shape);
        backend.Run(variant, shape, query, key, value, output, lse, options);
        return new(output, lse);
    }

    /// <summary>Runs the generic pair (<paramref name="score"/>, <paramref name="mask"/>).</summary>
    public static AttentionResult Run<TScore, TMask>(TestDevice backend, AttentionShape shape,
        float[] query, float[] key, float[] value, TScore score, TMask mask, AttentionOptions options)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
    {
        var (output, lse) = Allocate(shape);
        backend.Attention(shape, query, key, value, output, lse, score, mask, options);
        return new(output, lse);
    }

    /// <summary>Output and log-sum-exp buffers filled with <see cref="Sentinel"/>.</summary>
    public static (float[] Output, float[] LogSumExp) Allocate(AttentionShape shape)
    {
        var output = new float[shape.OutputLength];
        var lse = new float[shape.LogSumExpLength];
        output.AsSpan().Fill(Sentinel);
        lse.AsSpan().Fill(Sentinel);
        return (output, lse);
    }
}
