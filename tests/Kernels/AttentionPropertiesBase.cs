using FsCheck;
using FsCheck.Fluent;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;

namespace Managed.Tests.Kernels;

/// <summary>
/// Properties every <see cref="TestDevice"/> must have, written once (as ILGPU's own tests
/// are: an abstract class, one subclass per backend). A subclass supplies the backend and may
/// lower <see cref="Limits"/> when its backend is slow (ILGPU's CPU accelerator emulates GPU
/// threads). Every property runs at least 100 random cases; a failure prints the case and the
/// Replay seed that regenerates it.
/// </summary>
public abstract partial class AttentionPropertiesBase
{
    /// <summary>The backend under test.</summary>
    protected abstract TestDevice Backend { get; }

    /// <summary>Size limits of the generated cases; override with smaller ones for slow backends.</summary>
    protected virtual CaseLimits Limits => CaseLimits.Host;

    /// <summary>
    /// (query rows, keys) per tile of the backend's kernel on <paramref name="shape"/>: the
    /// NaN contract is stated per tile, so its properties need the backend's tiling.
    /// </summary>
    protected abstract (int QueryTile, int KeyTile) TileSizes(AttentionShape shape);

    /// <summary>Largest seqQ and seqK of a case.</summary>
    protected int MaxSeq => Limits.MaxSeq;

    /// <summary>Random cases within <see cref="Limits"/>.</summary>
    protected Arbitrary<AttentionCase> Cases => AttentionGen.Cases(Limits).ToArbitrary();

    /// <summary>The registry variant a case names.</summary>
    protected static IAttentionVariant VariantOf(AttentionCase c) => VariantRegistry.All[c.Variant];

    /// <summary>The registry's softmax variants (the properties whose argument is softmax's).</summary>
    protected static IReadOnlyList<IAttentionVariant> SoftmaxVariants { get; } =
        VariantRegistry.All.Where(VariantFacts.IsSoftmax).ToArray();

    /// <summary>The softmax variant a case names (its index modulo their count).</summary>
    protected static IAttentionVariant SoftmaxVariantOf(AttentionCase c) =>
        SoftmaxVariants[c.Variant % SoftmaxVariants.Count];

    /// <summary>True for registry variants whose mask is causal (any normalizer).</summary>
    protected static bool IsCausal(IAttentionVariant v) =>
        v.GetType() is { IsGenericType: true } t && t.GetGenericArguments() is { Length: >= 2 } a
        && a[1] == typeof(CausalMask);
}
