using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Simd;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>
/// Properties of the host kernel's tuning: tile sizes and SIMD width change the order of the
/// fp32 sums, never the result beyond rounding (compared with the kernel tolerance), and bad
/// tuning is rejected like bad input.
/// </summary>
public sealed class HostTuningProperties
{
    private static Arbitrary<AttentionCase> Cases => AttentionGen.Cases(CaseLimits.Host).ToArbitrary();

    /// <summary>Query tiles 1..80 and key tiles 16..256 (multiples of 16), edges included.</summary>
    private static Gen<AttentionTuning> Tilings { get; } =
        from queryTile in Gen.Frequency((1, Gen.Elements(1, 3, 4, 31, 32, 33, 64)), (1, Gen.Choose(1, 80)))
        from keyTiles in Gen.Choose(1, 16)
        from threads in Gen.Elements(-1, 1, 2)
        select new AttentionTuning
        {
            QueryTile = queryTile, KeyTile = 16 * keyTiles, MaxDegreeOfParallelism = threads,
        };

    [Property(MaxTest = 100)]
    public Property ResultDoesNotDependOnTileSizes() =>
        Prop.ForAll(Cases, Tilings.ToArbitrary(), (c, tuning) =>
        {
            var variant = VariantRegistry(c);
            var tiled = AttentionRun.Run(new TestDevice(ComputeDevice.Open(DeviceKind.Host), tuning), variant, c);
            var plain = AttentionRun.Run(new TestDevice(ComputeDevice.Open(DeviceKind.Host)), variant, c);
            var context = $"{variant.Name} {tuning}: {c}";
            Tolerance.Kernel.AssertClose(tiled.Output, plain.Output, "output", context);
            if (VariantFacts.LogSumExpWellConditioned(variant))
                Tolerance.Kernel.AssertClose(tiled.LogSumExp, plain.LogSumExp, "log-sum-exp", context);
        });

    /// <summary>V128, V256 and V512 agree (the test machine accelerates all three).</summary>
    [Property(MaxTest = 100)]
    public Property SimdWidthsAgree() =>
        Prop.ForAll(Cases, c =>
        {
            var variant = VariantRegistry(c);
            var wide = AttentionRun.Run(Host(SimdWidth.V512), variant, c);
            foreach (var width in new[] { SimdWidth.V256, SimdWidth.V128 })
            {
                var narrow = AttentionRun.Run(Host(width), variant, c);
                var context = $"{variant.Name} {width} vs V512: {c}";
                Tolerance.Kernel.AssertClose(narrow.Output, wide.Output, "output", context);
                if (VariantFacts.LogSumExpWellConditioned(variant))
                    Tolerance.Kernel.AssertClose(narrow.LogSumExp, wide.LogSumExp, "log-sum-exp", context);
            }
        });

    private static readonly AttentionTuning[] BadTunings =
    [
        new() { QueryTile = 0 }, new() { QueryTile = -3 }, new() { QueryTile = 4097 },
        new() { KeyTile = 0 }, new() { KeyTile = 8 }, new() { KeyTile = 24 }, new() { KeyTile = -16 },
        new() { KeyTile = 4112 }, new() { MaxDegreeOfParallelism = 0 }, new() { MaxDegreeOfParallelism = -2 },
    ];

    [Property(MaxTest = 100)]
    public Property BadTuningThrowsBeforeWritingAnything() =>
        Prop.ForAll(Cases, Gen.Elements(BadTunings).ToArbitrary(), (c, tuning) =>
        {
            var s = c.Shape;
            string part = tuning.QueryTile != 32 ? "QueryTile" : tuning.KeyTile != 64 ? "KeyTile"
                : "MaxDegreeOfParallelism";
            var bad = new BadCall($"tuning {tuning}", "options", [part], s, s.QueryLength, s.KeyLength,
                s.ValueLength, s.OutputLength, s.LogSumExpLength, c.Options);
            var variant = VariantRegistry(c);
            using var host = new TestDevice(ComputeDevice.Open(DeviceKind.Host), tuning);
            bad.AssertRejected(c, variant, (q, k, v, o, l) => host.Run(variant, s, q, k, v, o, l,
                c.Options));
        });

    /// <summary>
    /// Kernel-level effect of ALiBi's row form on long key tiles: 12 heads (slopes not powers
    /// of two), decode-like Nq = 4, Nk = 4096, KeyTile 4096 (a legal tuning). The result may
    /// not depend on the tile size, so it must match the reference as with KeyTile 64.
    /// </summary>
    [Fact]
    public void AlibiWithLargestKeyTileMatchesReference()
    {
        var shape = new AttentionShape(1, 12, 12, 4, 4096, 64, 64);
        var c = new AttentionCase(shape, QueryAlignment.BottomRight, 0, 12345);
        var variant = new AttentionVariant<Managed.Kernels.Variants.AlibiScore,
            Managed.Kernels.Variants.CausalMask>("alibi-12-causal", new(12), default);
        var result = AttentionRun.Run(new TestDevice(ComputeDevice.Open(DeviceKind.Host), new AttentionTuning { KeyTile = 4096 }), variant, c);
        var (output, lse) = variant.Reference(shape, c.Query, c.Key, c.Value, c.Options);
        Tolerance.Kernel.AssertClose(result.Output, output, "output", $"KeyTile 4096: {c}");
        Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", $"KeyTile 4096: {c}");
    }

    /// <summary>
    /// K is read from two places: the call's shared transposes, for a query tile that visits
    /// more key tiles than a worker's ring holds, and the worker's own ring otherwise (512 KB:
    /// 32 tiles of 16 x 64 floats, 8 of 64 x 256). Dense causal over 1000 keys in tiles of 16
    /// (63 tiles) takes the shared path for its lower rows and the ring for its upper rows in
    /// one call; sinks + window 300 at D = 256 visits tile 0 and a band of 6 or 7 tiles of 64, so
    /// ring slots collide (tile 0 and tile 8 share slot 0) and are transposed again. Both must
    /// match the reference.
    /// </summary>
    [Theory]
    [InlineData(1000, 64, 16, 0, 1)]
    [InlineData(1000, 64, 16, 0, 2)]
    [InlineData(1500, 256, 64, 300, 2)]
    public void RingAndSharedKeyTransposesMatchReference(int n, int d, int keyTile, int window, int threads)
    {
        var shape = new AttentionShape(1, 4, 2, n, n, d, d);
        var c = new AttentionCase(shape, QueryAlignment.BottomRight, 0, 4242 + n + d);
        IAttentionVariant variant = window == 0
            ? new AttentionVariant<Managed.Kernels.Variants.NoScore,
                Managed.Kernels.Variants.CausalMask>("causal", default, default)
            : new AttentionVariant<Managed.Kernels.Variants.NoScore,
                Managed.Kernels.Variants.SinkWindowMask>("sinks4-window", default, new(4, window));
        var tuning = new AttentionTuning { KeyTile = keyTile, MaxDegreeOfParallelism = threads };
        var result = AttentionRun.Run(new TestDevice(ComputeDevice.Open(DeviceKind.Host), tuning), variant, c);
        var (output, lse) = variant.Reference(shape, c.Query, c.Key, c.Value, c.Options);
        string context = $"{variant.Name} KeyTile {keyTile} threads {threads}: {c}";
        Tolerance.Kernel.AssertClose(result.Output, output, "output", context);
        Tolerance.Kernel.AssertClose(result.LogSumExp, lse, "log-sum-exp", context);
    }

    private static IAttentionVariant VariantRegistry(AttentionCase c) =>
        Managed.Kernels.Registry.VariantRegistry.All[c.Variant];

    private static TestDevice Host(SimdWidth width) =>
        new(ComputeDevice.Open(DeviceKind.Host), new AttentionTuning { Simd = width });
}
