using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Layouts;
using Managed.Kernels.Registry;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;
using Xunit.Sdk;
using Half = System.Half;

namespace Managed.Tests.Kernels;

/// <summary>
/// Every registry variant through its typed entry
/// (<see cref="IAttentionVariant.Forward{TStorage}"/>, as `check --dtype` runs it) with Q, K
/// and V stored as <see cref="Half"/> and as <see cref="BFloat16"/>, against the fp64
/// reference on the rounded values (widened exactly). Off the tensor cores the kernels widen
/// the 16-bit values on load and then compute as in fp32 on the same floats the reference
/// gets, so the tolerance is the fp32 property's (<see cref="Tolerance.Kernel"/>): rounding
/// the inputs is not an error of the kernel.
/// </summary>
internal static class TypedStorageReference
{
    /// <summary>Runs <paramref name="variant"/> on <paramref name="c"/>'s data rounded by
    /// <paramref name="narrow"/> and compares it with the reference on the widened values.
    /// </summary>
    public static void AssertMatches<T>(TestDevice backend, IAttentionVariant variant,
        AttentionCase c, Func<float, T> narrow, Func<T, float> widen) where T : unmanaged
    {
        T[] q = c.Query.Select(narrow).ToArray(), k = c.Key.Select(narrow).ToArray(),
            v = c.Value.Select(narrow).ToArray();
        var (output, lse) = AttentionRun.Allocate(c.Shape);
        backend.Run<T>(variant, c.Shape, q, k, v, output, lse, c.Options);
        var (refOutput, refLse) = variant.Reference(c.Shape, q.Select(widen).ToArray(),
            k.Select(widen).ToArray(), v.Select(widen).ToArray(), c.Options);
        var context = $"{variant.Name} {typeof(T).Name}: {c}";
        Tolerance.Kernel.AssertClose(output, refOutput, "output", context);
        if (VariantFacts.LogSumExpWellConditioned(variant))
            Tolerance.Kernel.AssertClose(lse, refLse, "log-sum-exp", context);
    }

    /// <summary>fp16, round to nearest even.</summary>
    public static Half ToHalf(float x) => (Half)x;

    /// <summary>fp16 widened (exact).</summary>
    public static float FromHalf(Half x) => (float)x;
}

/// <summary>The typed entry on the host SIMD kernels: every registry variant per case, in
/// each 16-bit type; see <see cref="TypedStorageReference"/>. Cases within
/// <see cref="Limits"/> (the fp64 reference dominates: 2 types x every variant per case).
/// </summary>
[Collection(HostBackendCollection.Name)]
public sealed class TypedStorageVariantHostTests(HostBackendFixture fixture)
{
    /// <summary>Up to 96 positions and a tenth of the fp32 property's reference work.</summary>
    public static CaseLimits Limits { get; } = new(MaxSeq: 96, MaxBatch: 2, MaxHeads: 4,
        Budget: 800_000);

    private static Arbitrary<AttentionCase> Cases { get; } =
        AttentionGen.Cases(Limits).ToArbitrary();

    [Property(MaxTest = 12)]
    public Property HalfMatchesReferenceOnRoundedInputsForEveryVariant() =>
        Prop.ForAll(Cases, c =>
        {
            foreach (var variant in VariantRegistry.All)
                TypedStorageReference.AssertMatches(fixture.Backend, variant, c,
                    TypedStorageReference.ToHalf, TypedStorageReference.FromHalf);
        });

    [Property(MaxTest = 12)]
    public Property BFloat16MatchesReferenceOnRoundedInputsForEveryVariant() =>
        Prop.ForAll(Cases, c =>
        {
            foreach (var variant in VariantRegistry.All)
                TypedStorageReference.AssertMatches(fixture.Backend, variant, c,
                    BFloat16.FromSingle, BFloat16.ToSingle);
        });

    /// <summary>Float through the typed entry is the float entry, bit for bit (table variants
    /// included, whose float entry now goes through the typed one).</summary>
    [Property(MaxTest = 12)]
    public Property FloatThroughTheTypedEntryIsTheFloatEntry() =>
        Prop.ForAll(Cases, c =>
        {
            foreach (var variant in VariantRegistry.All)
            {
                var expected = AttentionRun.Run(fixture.Backend, variant, c);
                var (output, lse) = AttentionRun.Allocate(c.Shape);
                fixture.Backend.Run<float>(variant, c.Shape, c.Query, c.Key, c.Value, output,
                    lse, c.Options);
                if (!output.AsSpan().SequenceEqual(expected.Output)
                    || !lse.AsSpan().SequenceEqual(expected.LogSumExp))
                    throw new XunitException($"{variant.Name}: typed float differs. {c}");
            }
        });
}

/// <summary>
/// The typed entry on ILGPU's CPU accelerator for the registry's table variants: tables made
/// for the shape and uploaded per call (<see cref="TableVariant"/>), Q, K and V staged in the
/// 16-bit type. One small fixed case; the variants alternate between Half and BFloat16, so
/// both types and every table variant pass through the device path while each compiles one
/// kernel (about 1.5 s each on the 2-core host). Tolerance as on the host.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class TypedStorageTableVariantIlgpuCpuTests(IlgpuCpuFixture fixture)
{
    private static readonly AttentionCase Case =
        new(new AttentionShape(1, 4, 2, 37, 70, 16, 16), QueryAlignment.BottomRight, 0, 7);

    [Fact]
    public void TableVariantsInHalfOrBFloat16MatchReference()
    {
        var tables = VariantRegistry.All.OfType<TableVariant>().ToList();
        Assert.True(tables.Count >= 2);
        for (int i = 0; i < tables.Count; i++)
            if (i % 2 == 0)
                TypedStorageReference.AssertMatches(fixture.Backend, tables[i], Case,
                    TypedStorageReference.ToHalf, TypedStorageReference.FromHalf);
            else
                TypedStorageReference.AssertMatches(fixture.Backend, tables[i], Case,
                    BFloat16.FromSingle, BFloat16.ToSingle);
    }
}
