using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.Kernels;

/// <summary>
/// Operator structs whose default instance has no meaning (a softcap of 0, ALiBi without a
/// head count, documents of length 0, a neighborhood axis of extent 0) or whose parameters
/// are missing inside a combinator. Each is named by a key, so every one is its own test case
/// (a failure names the operator).
/// </summary>
public static class MissingParameters
{
    /// <summary>The call every case runs: small, so the ILGPU CPU accelerator is quick.</summary>
    public static readonly AttentionCase Case =
        new(new AttentionShape(1, 2, 2, 12, 12, 8, 8), QueryAlignment.BottomRight, 0, 11);

    /// <summary>Score modifiers whose default is meaningless.</summary>
    public static TheoryData<string> Scores { get; } =
        ["softcap", "temperature", "alibi", "logpos-temperature"];

    /// <summary>Masks whose default is meaningless, bare or inside a combinator.</summary>
    public static TheoryData<string> Masks { get; } =
    [
        "sink-window", "fixed-document", "neighborhood-1d", "neighborhood-2d", "neighborhood-3d",
        "halo", "radial", "power", "strided-shard", "moa", "duo", "and(causal,sink-window)",
        "or(prefix,fixed-document)", "not(strided-shard)",
    ];

    /// <summary>Masks that read tables (device-typed for ILGPU: the table is never read).</summary>
    public static TheoryData<string> TableMasks { get; } =
        ["head-select(inner sink-window)", "block(inner fixed-document)"];

    /// <summary>
    /// Runs the case named <paramref name="key"/> through <paramref name="check"/>: the operator
    /// pair, the argument that must be named and the words the message must contain.
    /// </summary>
    public static void Run(string key, ICheck check)
    {
        NoScore none = default;
        const string Mask = "mask", Score = "score", Axis = "NeighborhoodAxis";
        switch (key)
        {
            case "softcap":
                check.Rejects(default(SoftcapScore), default(NoMask), Score, "SoftcapScore", "cap");
                break;
            case "temperature":
                check.Rejects(default(TemperatureScore), default(NoMask), Score,
                    "TemperatureScore", "temperature");
                break;
            case "alibi":
                check.Rejects(default(AlibiScore), default(NoMask), Score, "AlibiScore", "heads");
                break;
            case "logpos-temperature":
                check.Rejects(default(LogPositionTemperatureScore), default(CausalMask), Score,
                    "LogPositionTemperatureScore", "b");
                break;
            case "sink-window":
                check.Rejects(none, default(SinkWindowMask), Mask, "SinkWindowMask", "window");
                break;
            case "fixed-document":
                check.Rejects(none, default(FixedDocumentMask), Mask, "FixedDocumentMask",
                    "length");
                break;
            case "neighborhood-1d":
                check.Rejects(none, default(NeighborhoodMask1D), Mask, Axis, "extent");
                break;
            case "neighborhood-2d":
                check.Rejects(none, new NeighborhoodMask2D(new(3, 3), default), Mask, Axis,
                    "columns");
                break;
            case "neighborhood-3d":
                check.Rejects(none, new NeighborhoodMask3D(default, new(2, 2), new(2, 2)), Mask,
                    Axis, "depth");
                break;
            case "halo":
                check.Rejects(none, default(HaloMask), Mask, "HaloAxis", "block");
                break;
            case "radial":
                check.Rejects(none, default(RadialMask), Mask, "RadialMask", "frames");
                break;
            case "power":
                check.Rejects(none, default(PowerAttentionMask), Mask, "PowerAttentionMask",
                    "block");
                break;
            case "strided-shard":
                check.Rejects(none, default(StridedShardMask), Mask, "StridedShardMask", "stride");
                break;
            case "moa":
                check.Rejects(none, default(MoaMask), Mask, "MoaMask", "window");
                break;
            case "duo":
                check.Rejects(none, default(DuoAttentionMask), Mask, "DuoAttentionMask", "window");
                break;
            case "and(causal,sink-window)":
                check.Rejects(none, new And<CausalMask, SinkWindowMask>(default, default), Mask,
                    "SinkWindowMask");
                break;
            case "or(prefix,fixed-document)":
                check.Rejects(none, new Or<PrefixLmMask, FixedDocumentMask>(new(2), default), Mask,
                    "FixedDocumentMask");
                break;
            case "not(strided-shard)":
                check.Rejects(none, new Not<StridedShardMask>(default), Mask, "StridedShardMask");
                break;
            default: throw new ArgumentOutOfRangeException(nameof(key), key, "unknown case");
        }
    }

    /// <summary>The table-reading cases over tables of type <typeparamref name="TInts"/>.</summary>
    public static void RunTables<TInts>(string key, TInts flags, TInts layout, ICheck check)
        where TInts : struct, ITable<int>
    {
        switch (key)
        {
            case "head-select(inner sink-window)":
                check.Rejects(default(NoScore),
                    new HeadSelectMask<CausalMask, SinkWindowMask, TInts>(flags, default, default),
                    "mask", "SinkWindowMask");
                break;
            case "block(inner fixed-document)":
                check.Rejects(default(NoScore),
                    new BlockMask<FixedDocumentMask, TInts>(layout, default, 1, 1, 1, 12, 12),
                    "mask", "FixedDocumentMask");
                break;
            default: throw new ArgumentOutOfRangeException(nameof(key), key, "unknown case");
        }
    }

    /// <summary>Runs one operator pair on a backend and checks the rejection.</summary>
    public interface ICheck
    {
        /// <summary>The call throws ArgumentException for <paramref name="argument"/> whose
        /// message holds every one of <paramref name="parts"/>, before anything is
        /// written.</summary>
        void Rejects<TScore, TMask>(TScore score, TMask mask, string argument,
            params string[] parts)
            where TScore : struct, IScoreModifier
            where TMask : struct, IMaskPredicate;
    }

    /// <summary>Calls <paramref name="call"/> with sentinel-filled outputs and checks the
    /// exception's type, parameter name and message, and that the outputs kept the
    /// sentinel.</summary>
    public static void AssertRejected(Action<float[], float[]> call, string argument,
        string[] parts, string what)
    {
        var (output, lse) = AttentionRun.Allocate(Case.Shape);
        ArgumentException error;
        try
        {
            call(output, lse);
            throw new XunitException($"{what}: no exception; the call ran.");
        }
        catch (ArgumentException e) { error = e; }
        Assert.True(error.GetType() != typeof(ArgumentNullException),
            $"{what}: {error.GetType().Name}: {error.Message}");
        Assert.True(error.ParamName == argument,
            $"{what}: ParamName '{error.ParamName}', expected '{argument}'. {error.Message}");
        foreach (var part in parts)
            Assert.True(error.Message.Contains(part, StringComparison.Ordinal),
                $"{what}: message lacks '{part}': {error.Message}");
        Assert.True(output.All(x => x == AttentionRun.Sentinel), $"{what}: output was written.");
        Assert.True(lse.All(x => x == AttentionRun.Sentinel), $"{what}: log-sum-exp was written.");
    }
}

/// <summary>
/// Defaults without meaning are rejected by <see cref="FlashAttention.Forward{TScore,TMask}"/>
/// on host spans: ArgumentException naming "score" or "mask" and the missing parameter, with
/// output and log-sum-exp untouched. Defaults that mean something run, and equal what their
/// doc comments say.
/// </summary>
public sealed class VariantDefaultHostTests : MissingParameters.ICheck
{
    /// <inheritdoc/>
    void MissingParameters.ICheck.Rejects<TScore, TMask>(TScore score, TMask mask, string argument,
        params string[] parts)
    {
        var c = MissingParameters.Case;
        MissingParameters.AssertRejected((output, lse) => HostAttention.Forward(c.Shape, c.Query,
            c.Key, c.Value, output, lse, score, mask, c.Options), argument, parts,
            $"{typeof(TScore).Name}/{typeof(TMask).Name}");
    }

    [Theory]
    [MemberData(nameof(MissingParameters.Scores), MemberType = typeof(MissingParameters))]
    public void DefaultScoreIsRejected(string key) => MissingParameters.Run(key, this);

    [Theory]
    [MemberData(nameof(MissingParameters.Masks), MemberType = typeof(MissingParameters))]
    public void DefaultMaskIsRejected(string key) => MissingParameters.Run(key, this);

    [Theory]
    [MemberData(nameof(MissingParameters.TableMasks), MemberType = typeof(MissingParameters))]
    public void DefaultInnerMaskIsRejected(string key)
    {
        var flags = new VariantTable<int>([1, 0]).Host;
        var layout = new VariantTable<int>([(int)TileKind.Partial]).Host;
        MissingParameters.RunTables(key, flags, layout, this);
    }

    /// <summary>default(SlidingWindowMask) is the diagonal (window 0, 0); default(PrefixLmMask)
    /// causal (no prefix); default(KeyReweightScore) re-weights no key (exact attention); the
    /// default normalizers are sigmoid with bias 0, plain softplus and softmax.</summary>
    [Fact]
    public void MeaningfulDefaultsRunAsDocumented()
    {
        var c = MissingParameters.Case;
        float[] Run<TS, TM, TN>(TS score, TM mask, TN norm)
            where TS : struct, IScoreModifier
            where TM : struct, IMaskPredicate
            where TN : struct, INormalizer
        {
            var (output, lse) = AttentionRun.Allocate(c.Shape);
            HostAttention.Forward(c.Shape, c.Query, c.Key, c.Value, output, lse, score, mask, norm,
                c.Options);
            return [.. output, .. lse];
        }
        NoScore none = default;
        SoftmaxNormalizer softmax = default;
        Assert.Equal(Run(none, new SlidingWindowMask(0, 0), softmax),
            Run(none, default(SlidingWindowMask), softmax));
        Assert.Equal(Run(none, default(CausalMask), softmax),
            Run(none, default(PrefixLmMask), softmax));
        Assert.Equal(Run(none, default(CausalMask), softmax),
            Run(default(KeyReweightScore), default(CausalMask), softmax));
        Assert.Equal(Run(none, default(NoMask), new SigmoidNormalizer(0f)),
            Run(none, default(NoMask), default(SigmoidNormalizer)));
        // Clipped softmax with zeta = 1, gamma = 0 is softmax, computed in two passes (its
        // log-sum-exp output is ln of its weights' sum, 0): outputs only, to rounding.
        int n = (int)MissingParameters.Case.Shape.OutputLength;
        var clipped = Run(none, default(NoMask), default(ClippedSoftmaxNormalizer));
        var exact = Run(none, default(NoMask), softmax);
        for (int i = 0; i < n; i++)
            Assert.True(Math.Abs(clipped[i] - exact[i]) <= 1e-5f + 1e-5f * Math.Abs(exact[i]),
                $"clipped default at {i}: {clipped[i]} vs softmax {exact[i]}");
        var softplus = Run(none, default(NoMask), default(SoftplusNormalizer));
        Assert.All(softplus, x => Assert.True(float.IsFinite(x) && x != AttentionRun.Sentinel));
    }

    /// <summary>Constructors reject parameters whose reciprocal is not finite (a subnormal cap
    /// or temperature: 1 / x overflows, and 0 * infinity is NaN for a zero score).</summary>
    [Fact]
    public void SubnormalCapAndTemperatureAreRejected()
    {
        var cap = Assert.ThrowsAny<ArgumentException>(() => new SoftcapScore(1e-45f));
        Assert.Equal("cap", cap.ParamName);
        var temperature = Assert.ThrowsAny<ArgumentException>(() => new TemperatureScore(1e-45f));
        Assert.Equal("temperature", temperature.ParamName);
    }
}

/// <summary>
/// The same rejections on the ILGPU CPU accelerator (span and view entry points), before any
/// kernel is compiled or launched; table-reading masks over (default) device tables.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class VariantDefaultIlgpuCpuTests(IlgpuCpuFixture fixture) : MissingParameters.ICheck
{
    /// <inheritdoc/>
    void MissingParameters.ICheck.Rejects<TScore, TMask>(TScore score, TMask mask, string argument,
        params string[] parts)
    {
        var c = MissingParameters.Case;
        var backend = fixture.Backend;
        string what = $"{typeof(TScore).Name}/{typeof(TMask).Name}";
        MissingParameters.AssertRejected((output, lse) => backend.Attention(c.Shape, c.Query,
            c.Key, c.Value, output, lse, score, mask, c.Options), argument, parts,
            what + " (spans)");
        using var q = backend.Accelerator!.Allocate1D<float>(c.Query);
        using var k = backend.Accelerator!.Allocate1D<float>(c.Key);
        using var v = backend.Accelerator!.Allocate1D<float>(c.Value);
        MissingParameters.AssertRejected((output, lse) =>
        {
            using var o = backend.Accelerator!.Allocate1D<float>(output);
            using var l = backend.Accelerator!.Allocate1D<float>(lse);
            try
            {
                backend.Attention(c.Shape, q.View, k.View, v.View, o.View, l.View, score, mask,
                    c.Options);
            }
            finally
            {
                backend.Accelerator!.Synchronize();
                o.View.AsContiguous().CopyToCPU(output);
                l.View.AsContiguous().CopyToCPU(lse);
            }
        }, argument, parts, what + " (views)");
    }

    [Theory]
    [MemberData(nameof(MissingParameters.Scores), MemberType = typeof(MissingParameters))]
    public void DefaultScoreIsRejected(string key) => MissingParameters.Run(key, this);

    [Theory]
    [MemberData(nameof(MissingParameters.Masks), MemberType = typeof(MissingParameters))]
    public void DefaultMaskIsRejected(string key) => MissingParameters.Run(key, this);

    [Theory]
    [MemberData(nameof(MissingParameters.TableMasks), MemberType = typeof(MissingParameters))]
    public void DefaultInnerMaskIsRejected(string key) =>
        MissingParameters.RunTables(key, default(DeviceTable<int>), default(DeviceTable<int>),
            this);
}
