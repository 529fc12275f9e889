namespace Managed.Kernels.Variants;

/// <summary>
/// The variants the library ships, as closed generic types. Tests, benchmarks and the CLI
/// enumerate this list, so a new variant is one line here plus its structs.
/// </summary>
public static class VariantRegistry
{
    /// <summary>Every registered variant.</summary>
    public static IReadOnlyList<IAttentionVariant> All { get; } =
    [
        new AttentionVariant<NoScore, NoMask>("full", default, default),
        new AttentionVariant<NoScore, CausalMask>("causal", default, default),
        new AttentionVariant<AlibiScore, NoMask>("alibi", new(8), default),
        new AttentionVariant<AlibiScore, CausalMask>("alibi-causal", new(8), default),
        new AttentionVariant<SoftcapScore, NoMask>("softcap-30", new(30f), default),
        new AttentionVariant<SoftcapScore, CausalMask>("softcap-30-causal", new(30f), default),
    ];
}
