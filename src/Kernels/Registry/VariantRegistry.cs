using Managed.Kernels.Attention;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Registry;

/// <summary>
/// The variants the library ships, as closed generic types. Tests, benchmarks and the CLI
/// enumerate this list, so a new variant is one line here plus its structs.
/// </summary>
public static class VariantRegistry
{
    /// <summary>The registered variants that a <see cref="VariantSpec"/> describes, in
    /// registry order (their names are the specs' canonical names).</summary>
    public static IReadOnlyList<VariantSpec> Specs { get; } =
    [
        new(MaskSpec.None),
        new(MaskSpec.Causal),
        new(MaskSpec.None, ScoreSpec.Alibi()),
        new(MaskSpec.Causal, ScoreSpec.Alibi()),
        new(MaskSpec.None, ScoreSpec.Softcap(30f)),
        new(MaskSpec.Causal, ScoreSpec.Softcap(30f)),
        new(MaskSpec.SlidingWindow(16, 8)),
        new(MaskSpec.CausalWindow(32)),
        new(MaskSpec.SinkWindow(4, 32)),
        new(MaskSpec.PrefixLm(24)),
        new(MaskSpec.CausalDocuments(50)),
        new(MaskSpec.None, ScoreSpec.FixedTemperature(0.5f)),
        new(MaskSpec.None, Normalizer: NormalizerSpec.Sigmoid(-4f)),
        new(MaskSpec.Causal, Normalizer: NormalizerSpec.Sigmoid(-2f)),
        new(MaskSpec.Causal, Normalizer: NormalizerSpec.Softplus(16)),
        new(MaskSpec.None, Normalizer: NormalizerSpec.Softplus(16, 2f)),
        new(MaskSpec.None, Normalizer: NormalizerSpec.ClippedSoftmax(1f, -0.01f)),
        new(MaskSpec.Causal, Normalizer: NormalizerSpec.ClippedSoftmax(1.5f, -0.05f)),
    ];

    /// <summary>Every registered variant: <see cref="Specs"/> bound, then the variants a spec
    /// cannot describe.</summary>
    public static IReadOnlyList<IAttentionVariant> All { get; } =
    [
        // Built from specs (VariantSpec.cs): the name is the spec's canonical name; ALiBi
        // bound at a nominal 8 heads, whatever the call's head count.
        .. Specs.Select(spec => spec.Bind(heads: 8)),
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
        new AttentionVariant<LogPositionTemperatureScore, CausalMask>("logpos-temp-causal",
            new(0.1f, 1f), default),
        new AttentionVariant<KeyReweightScore, CausalMask>("zerotuning-sink1-x2",
            KeyReweightScore.Sinks(1, 2f), default),
        new AttentionVariant<KeyReweightScore, SinkWindowMask>("sink4-w32-x0.25-h0-3",
            new(0, 4, 0.25f, 0x0F), new(4, 32)),
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
