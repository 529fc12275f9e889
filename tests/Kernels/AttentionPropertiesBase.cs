using FsCheck;
using FsCheck.Fluent;
using Managed.Kernels;
using Managed.Kernels.Backends;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;

namespace Managed.Tests.Kernels;

/// <summary>
/// Properties every <see cref="IKernelBackend"/> must have, written once (as ILGPU's own tests
/// are: an abstract class, one subclass per backend). A subclass supplies the backend and may
/// lower <see cref="Limits"/> when its backend is slow (ILGPU's CPU accelerator emulates GPU
/// threads). Every property runs at least 100 random cases; a failure prints the case and the
/// Replay seed that regenerates it.
/// </summary>
public abstract partial class AttentionPropertiesBase
{
    /// <summary>The backend under test.</summary>
    protected abstract IKernelBackend Backend { get; }

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

    /// <summary>True for registry variants whose mask is causal.</summary>
    protected static bool IsCausal(IAttentionVariant v) =>
        v.GetType().GetGenericArguments()[1] == typeof(CausalMask);
}
