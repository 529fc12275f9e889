using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>
/// Each table operator on a kernel against the fp64 reference given the same predicate and
/// tables (<see cref="TableOps.Random"/>: random ids, trees, layouts with blocks of any size,
/// flags, bias and temperature tables fitted to each random shape, non-multiples of the tile
/// sizes included). Tolerance: <see cref="Tolerance.Kernel"/> (atol 1e-5, rtol 1e-4), as
/// for every registry variant: the tables only choose which keys count (masks) or move a logit
/// by at most 3 (bias) or scale it by 0.25..3 (temperature), so logits stay small and the
/// fp32 rounding of the kernel stays near 1e-6.
/// </summary>
internal static class TableVariantReference
{
    /// <summary>Runs the op of <paramref name="kind"/> for <paramref name="c"/> on
    /// <paramref name="backend"/> (device tables on ILGPU) and compares with the reference.</summary>
    public static void AssertMatches(TestDevice backend, int kind, AttentionCase c)
    {
        var op = TableOps.Random(kind, c);
        var result = op.Run(backend, c);
        var (output, lse) = op.Reference(c);
        var context = $"{op}: {c}";
        Tolerance.Kernel.AssertClose(result.Output, output, "output", context);
        Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", context);
    }

    /// <summary>Every registry <see cref="TableVariant"/> through its own Run (host tables on
    /// the host; on ILGPU, tables made for the shape and uploaded per call) against its
    /// Reference (host tables made for the same shape).</summary>
    public static void AssertRegistryMatches(TestDevice backend, AttentionCase c)
    {
        foreach (var variant in VariantRegistry.All.OfType<TableVariant>())
        {
            var result = AttentionRun.Run(backend, variant, c);
            var (output, lse) = variant.Reference(c.Shape, c.Query, c.Key, c.Value, c.Options);
            var context = $"{variant.Name}: {c}";
            Tolerance.Kernel.AssertClose(result.Output, output, "output", context);
            Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", context);
        }
    }
}

/// <summary>The table operators on the host SIMD kernel (host tables) against the reference;
/// see <see cref="TableVariantReference"/> for the tolerance.</summary>
[Collection(HostBackendCollection.Name)]
public sealed class TableVariantHostKernelTests(HostBackendFixture fixture)
{
    private static Arbitrary<AttentionCase> Cases { get; } = AttentionGen.Cases(CaseLimits.Host).ToArbitrary();

    /// <summary>Sorted ids of random document lengths, under CausalMask (packing).</summary>
    [Property(MaxTest = 60)]
    public Property SortedDocumentIdsMatchReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(fixture.Backend, 0, c));

    /// <summary>Unsorted ids (no tile skipping).</summary>
    [Property(MaxTest = 60)]
    public Property UnsortedDocumentIdsMatchReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(fixture.Backend, 1, c));

    /// <summary>Random trees after a random prefix, seqK = prefix + nodes.</summary>
    [Property(MaxTest = 60)]
    public Property TreeMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(fixture.Backend, 2, c));

    /// <summary>Random 0 / 1 / 2 layouts over a sliding window.</summary>
    [Property(MaxTest = 60)]
    public Property BlockOfWindowMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(fixture.Backend, 3, c));

    /// <summary>Random boolean layouts, NoMask inside.</summary>
    [Property(MaxTest = 60)]
    public Property BooleanBlockLayoutMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(fixture.Backend, 4, c));

    /// <summary>BlockMasks.Layout of CausalMask with CausalMask inside.</summary>
    [Property(MaxTest = 60)]
    public Property BlockOfCausalLayoutMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(fixture.Backend, 5, c));

    /// <summary>Random per-head flags between CausalMask and a sink window.</summary>
    [Property(MaxTest = 60)]
    public Property HeadSelectMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(fixture.Backend, 6, c));

    /// <summary>Random bias tables, heads 1 or all, radius 0..49.</summary>
    [Property(MaxTest = 60)]
    public Property RelativeBiasMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(fixture.Backend, 7, c));

    /// <summary>Random temperatures in [0.25, 3), tables covering all positions or fewer.</summary>
    [Property(MaxTest = 60)]
    public Property QueryTemperatureMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(fixture.Backend, 8, c));

    /// <summary>The registry's table variants (8 per case).</summary>
    [Property(MaxTest = 30)]
    public Property RegistryTableVariantsMatchReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertRegistryMatches(fixture.Backend, c));
}

/// <summary>
/// The table operators on the ILGPU kernels, run on ILGPU's CPU accelerator, with their tables
/// uploaded to the backend's accelerator (<see cref="VariantTable{T}.Upload"/>) and read as
/// <see cref="DeviceTable{T}"/> views; against the reference with host tables of the same
/// data. The emulated kernel costs 0.05-0.4 s per launch (more while other jobs share the 2
/// cores), so 12-15 cases per operator and 6 cases of the registry's 8 table variants; seqQ and
/// seqK up to 80 (both kernels: head dims up to 128 run the 64 x 64 tiled one, larger the
/// 16 x 16 one), batch up to 2 and heads up to 4. Tolerance as on the host.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class TableVariantIlgpuCpuKernelTests(IlgpuCpuFixture fixture)
{
    /// <summary>Small cases for the emulated kernel.</summary>
    public static CaseLimits Limits { get; } = new(MaxSeq: 80, MaxBatch: 2, MaxHeads: 4, Budget: 150_000);

    private static Arbitrary<AttentionCase> Cases { get; } = AttentionGen.Cases(Limits).ToArbitrary();

    private TestDevice Backend => fixture.Backend;

    /// <summary>Sorted ids under CausalMask.</summary>
    [Property(MaxTest = 15)]
    public Property SortedDocumentIdsMatchReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(Backend, 0, c));

    /// <summary>Unsorted ids.</summary>
    [Property(MaxTest = 15)]
    public Property UnsortedDocumentIdsMatchReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(Backend, 1, c));

    /// <summary>Random trees.</summary>
    [Property(MaxTest = 15)]
    public Property TreeMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(Backend, 2, c));

    /// <summary>Random layouts over a sliding window.</summary>
    [Property(MaxTest = 15)]
    public Property BlockOfWindowMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(Backend, 3, c));

    /// <summary>Random boolean layouts.</summary>
    [Property(MaxTest = 15)]
    public Property BooleanBlockLayoutMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(Backend, 4, c));

    /// <summary>Layout of CausalMask with CausalMask inside.</summary>
    [Property(MaxTest = 12)]
    public Property BlockOfCausalLayoutMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(Backend, 5, c));

    /// <summary>Per-head flags.</summary>
    [Property(MaxTest = 15)]
    public Property HeadSelectMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(Backend, 6, c));

    /// <summary>Bias tables.</summary>
    [Property(MaxTest = 15)]
    public Property RelativeBiasMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(Backend, 7, c));

    /// <summary>Temperature tables.</summary>
    [Property(MaxTest = 15)]
    public Property QueryTemperatureMatchesReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertMatches(Backend, 8, c));

    /// <summary>The registry's table variants through TableVariant.Run, which uploads tables made
    /// for the shape per call (8 launches per case).</summary>
    [Property(MaxTest = 6)]
    public Property RegistryTableVariantsMatchReference() => Prop.ForAll(Cases, c => TableVariantReference.AssertRegistryMatches(Backend, c));
}
