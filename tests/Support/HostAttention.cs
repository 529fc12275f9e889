using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;

namespace Managed.Tests.Support;

/// <summary>The span entry point on <see cref="ComputeDevice.Host"/>, with softmax as the
/// default normalizer and a tuning argument: the call shape most host tests use.</summary>
public static class HostAttention
{
    /// <summary>Softmax attention on the host.</summary>
    public static void Forward<TScore, TMask>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, AttentionOptions options = default,
        AttentionTuning? tuning = null)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        Forward(shape, query, key, value, output, logSumExp, score, mask,
            default(SoftmaxNormalizer), options, tuning);

    /// <summary>Attention with a normalizer on the host.</summary>
    public static void Forward<TScore, TMask, TNorm>(AttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output, Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        AttentionOptions options = default, AttentionTuning? tuning = null)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer =>
        FlashAttention.Forward(ComputeDevice.Host, shape, query, key, value, output, logSumExp,
            score, mask, normalizer, tuning is null ? options : options with { Tuning = tuning });
}
