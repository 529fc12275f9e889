using Managed.Kernels.Variants;
using Managed.Kernels.Registry;

namespace Managed.Tests.Support;

/// <summary>Facts about a registry variant's operator types (tests only).</summary>
public static class VariantFacts
{
    /// <summary>The variant's normalizer type.</summary>
    public static Type Normalizer(IAttentionVariant variant)
    {
        var probe = new Probe();
        variant.DeviceTyped.Accept(probe);
        return probe.Norm!;
    }

    /// <summary>True for softmax (exact attention's normalizer).</summary>
    public static bool IsSoftmax(IAttentionVariant variant) => Normalizer(variant) == typeof(SoftmaxNormalizer);

    /// <summary>
    /// False for clipped softmax: its weights (zeta - gamma) p + gamma cancel near the clip
    /// threshold, so ln(sum w) amplifies fp32 rounding of p by sum(p) / sum(w) (observed 5e-3 at
    /// sum w = 4e-6). Its outputs are well-conditioned (not divided by sum w) and still compared;
    /// the normalizer tests bound its log-sum-exp with that condition number.
    /// </summary>
    public static bool LogSumExpWellConditioned(IAttentionVariant variant) =>
        Normalizer(variant) != typeof(ClippedSoftmaxNormalizer);

    private sealed class Probe : IVariantVisitor
    {
        public Type? Norm;

        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer => Norm = typeof(TNorm);
    }
}
