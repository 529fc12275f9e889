using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;

namespace Managed.Tests.Support;

/// <summary>A variant's own mask predicate as a delegate (tests only; kernels never see it).</summary>
public static class MaskOf
{
    /// <summary>(batch, head, position, key) => the variant's mask, bound for
    /// <paramref name="shape"/> (table variants make their tables per shape), allows the pair.</summary>
    public static Func<int, int, int, int, bool> Allows(IAttentionVariant variant, AttentionShape shape)
    {
        var probe = new Probe();
        variant.ForHost(shape).Accept(probe);
        return probe.Result!;
    }

    private sealed class Probe : IVariantVisitor
    {
        public Func<int, int, int, int, bool>? Result;

        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer =>
            Result = (b, h, q, k) => mask.Allows(b, h, q, k);
    }
}
