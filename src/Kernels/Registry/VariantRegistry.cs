using Managed.Kernels.Attention;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Registry;

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
        // Window masks (WindowMasks.cs) and combinators (Combinators.cs).
        new AttentionVariant<NoScore, SlidingWindowMask>("window-l16-r8", default, new(16, 8)),
        new AttentionVariant<NoScore, SlidingWindowMask>("causal-window-32", default, SlidingWindowMask.Causal(32)),
        new AttentionVariant<NoScore, SinkWindowMask>("sink4-window32", default, new(4, 32)),
        new AttentionVariant<NoScore, PrefixLmMask>("prefix-lm-24", default, new(24)),
        new AttentionVariant<NoScore, And<CausalMask, FixedDocumentMask>>("doc-50-causal", default,
            new(default, new(50))),
        new AttentionVariant<NoScore, And<CausalMask, SlidingWindowMask>>("and(causal,win40)", default,
            new(default, new(40, 40))),
        new AttentionVariant<NoScore, Or<PrefixLmMask, SlidingWindowMask>>("or(prefix8,win8)", default,
            new(new(8), new(8, 8))),
        new AttentionVariant<NoScore, Not<SlidingWindowMask>>("not(window-8)", default, new(new(8, 8))),
        // Grid masks (NeighborhoodMasks.cs): tokens past the grid are masked.
        new AttentionVariant<NoScore, NeighborhoodMask1D>("na1d-128-k7-d2", default, new(128, 7, 2)),
        new AttentionVariant<NoScore, NeighborhoodMask1D>("na1d-128-k9-causal", default,
            new(128, 9, causal: true)),
        new AttentionVariant<NoScore, NeighborhoodMask2D>("na2d-8x16-k5x3-d1x2", default,
            new(new(8, 5), new(16, 3, 2))),
        new AttentionVariant<NoScore, NeighborhoodMask3D>("na3d-4x6x6-k3", default,
            new(new(4, 3), new(6, 3), new(6, 3))),
        new AttentionVariant<NoScore, NeighborhoodMask1D>("gna1d-128-k16-s8", default, new(128, 16, stride: 8)),
        new AttentionVariant<NoScore, NeighborhoodMask2D>("gna2d-12x12-blocked4", default,
            new(new(12, 4, stride: 4), new(12, 4, stride: 4))),
        new AttentionVariant<NoScore, HaloMask>("halo-12x12-b4-h1", default, new(12, 12, 4, 1)),
        // Sparse and per-head masks (SparseMasks.cs, HeadMasks.cs).
        new AttentionVariant<NoScore, RadialMask>("radial-8x16-w8", default, new(8, 16, 8)),
        new AttentionVariant<NoScore, PowerAttentionMask>("power-b8-local2", default, new(8, 2)),
        new AttentionVariant<NoScore, StridedShardMask>("s2-stride4-local16", default, new(4, 16)),
        new AttentionVariant<NoScore, MoaMask>("moa-s2-w8-16-32-64", default, new(2, 8, 16, 32, 64)),
        new AttentionVariant<NoScore, DuoAttentionMask>("duo-0xA5-s4-w16", default, new(0xA5, 4, 16)),
        // Score modifiers (TemperatureScores.cs, CalibrationScores.cs).
        new AttentionVariant<TemperatureScore, NoMask>("temperature-0.5", new(0.5f), default),
        new AttentionVariant<LogPositionTemperatureScore, CausalMask>("logpos-temp-causal",
            new(0.1f, 1f), default),
        new AttentionVariant<KeyReweightScore, CausalMask>("zerotuning-sink1-x2",
            KeyReweightScore.Sinks(1, 2f), default),
        new AttentionVariant<KeyReweightScore, SinkWindowMask>("sink4-w32-x0.25-h0-3",
            new(0, 4, 0.25f, 0x0F), new(4, 32)),
        // Softmax replacements (Normalizers.cs): the same kernel with a normalizer type.
        new AttentionVariant<NoScore, NoMask, SigmoidNormalizer>("sigmoid-b-4", default, default, new(-4f)),
        new AttentionVariant<NoScore, CausalMask, SigmoidNormalizer>("sigmoid-b-2-causal", default,
            default, new(-2f)),
        new AttentionVariant<NoScore, CausalMask, SoftplusNormalizer>("softplus-lssa16-causal", default,
            default, new(16)),
        new AttentionVariant<NoScore, NoMask, SoftplusNormalizer>("softplus-lssa16-p2", default,
            default, new(16, 2f)),
        new AttentionVariant<NoScore, NoMask, ClippedSoftmaxNormalizer>("clipped-1-0.01", default,
            default, new(1f, -0.01f)),
        new AttentionVariant<NoScore, CausalMask, ClippedSoftmaxNormalizer>("clipped-1.5-0.05-causal",
            default, default, new(1.5f, -0.05f)),
        // Operators that read tables (TableVariants.cs), made per shape, bound per backend.
        new DocumentIdsVariant("docids-causal", causal: true),
        new DocumentIdsVariant("docids-interleaved", causal: false),
        new MedusaTreeVariant("medusa-tree-31"),
        new BlockLayoutVariant("block-layout-16x32", window: false),
        new BlockLayoutVariant("block-of-window-l20-r5", window: true),
        new HeadFlagsVariant("duo-flags-s4-w16"),
        new RelativeBiasVariant("relbias-r24-causal"),
        new QueryTemperatureVariant("query-temperature"),
    ];
}
