using FsCheck;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Xunit;
using Managed.Tests.Support;

namespace Managed.Tests.Kernels;

/// <summary>
/// Owns one ILGPU backend on ILGPU's CPU accelerator (the GPU kernel emulated thread by
/// thread: exact, about 1000x slower than the host SIMD path) for a test collection, and
/// disposes it (kernels, accelerator, context) at the end.
/// </summary>
public class IlgpuCpuFixture : IDisposable
{
    /// <summary>Opens the backend with <paramref name="tuning"/> (null: defaults, shuffles).</summary>
    protected IlgpuCpuFixture(AttentionTuning? tuning) =>
        Backend = new TestDevice(ComputeDevice.Open(DeviceKind.IlgpuCpu), tuning);

    /// <summary>Opens the backend with the default tuning (warp-shuffle row reductions).</summary>
    public IlgpuCpuFixture() : this(null) { }

    /// <summary>The backend.</summary>
    public TestDevice Backend { get; }

    /// <summary>
    /// Small limits for the emulated kernel: every property of the base class must fit in a few
    /// minutes on 2 cores. Head dims keep the full range (1..256), so both GPU kernels run (the
    /// register-tiled one up to 128 dims, 64 x 64 tiles; the general one above, 16 x 16 tiles).
    /// </summary>
    public static CaseLimits Limits { get; } = new(MaxSeq: 40, MaxBatch: 2, MaxHeads: 2, Budget: 100_000);

    /// <summary>
    /// The tiles of the ILGPU kernel for <paramref name="shape"/>, chosen as
    /// <see cref="TestDevice"/> does: by max(headDim, valueDim).
    /// </summary>
    public static (int QueryTile, int KeyTile) TileSizes(AttentionShape shape) =>
        FlashAttention.IlgpuTileSizes(shape);

    /// <inheritdoc/>
    public void Dispose()
    {
        Backend.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Binds <see cref="IlgpuCpuFixture"/> to the "IlgpuCpu" collection.</summary>
[CollectionDefinition(Name)]
public sealed class IlgpuCpuCollection : ICollectionFixture<IlgpuCpuFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "IlgpuCpu";
}

/// <summary>
/// The backend properties on the ILGPU kernel, run on ILGPU's CPU accelerator (what CI can
/// run without a GPU), with the warp-shuffle row reductions CUDA uses. Every property of
/// <see cref="AttentionPropertiesBase"/> runs here, through a private subclass bound to the
/// fixture's backend, with fewer cases than on the host: the emulated kernel costs about
/// 0.1-0.4 s per launch even for one 1x1 tile on 2 cores (128 OS threads per group meet at
/// every barrier and shuffle), so the base class's 100-200 cases per property (about 3500
/// launches) would take over 15 minutes. The counts below keep the class near 3 minutes;
/// <see cref="ForwardsEveryBaseProperty"/> fails if a base property is not forwarded.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class IlgpuCpuAttentionProperties(IlgpuCpuFixture fixture)
{
    private readonly IlgpuCpuRunner _runner = new(fixture.Backend);

    // Reference.cs
    [Property(MaxTest = 20)] // 6 variants per case
    public Property KernelMatchesReferenceForEveryVariant() => _runner.KernelMatchesReferenceForEveryVariant();

    [Property(MaxTest = 30)]
    public Property OtherModifierParametersMatchReference() => _runner.OtherModifierParametersMatchReference();

    [Property(MaxTest = 15)]
    public Property LogSumExpIsOptional() => _runner.LogSumExpIsOptional();

    [Property(MaxTest = 30)]
    public Property LargeLogitsStayFiniteAndAccurate() => _runner.LargeLogitsStayFiniteAndAccurate();

    [Property(MaxTest = 10)] // 3 causal variants per case
    public Property FullyMaskedRowsGiveZerosAndNegativeInfinity() =>
        _runner.FullyMaskedRowsGiveZerosAndNegativeInfinity();

    // Invariants.cs
    [Property(MaxTest = 15)]
    public Property AddingConstantToEveryLogitChangesNothing() => _runner.AddingConstantToEveryLogitChangesNothing();

    [Property(MaxTest = 15)]
    public Property PermutingKeysWithValuesChangesNothing() => _runner.PermutingKeysWithValuesChangesNothing();

    [Property(MaxTest = 10)]
    public Property MergingAnySplitOfTheKeysEqualsTheWhole() => _runner.MergingAnySplitOfTheKeysEqualsTheWhole();

    [Property(MaxTest = 15)]
    public Property GroupedQueryEqualsRepeatedKvHeads() => _runner.GroupedQueryEqualsRepeatedKvHeads();

    [Property(MaxTest = 30)]
    public Property CausalSingleTokenReturnsValue() => _runner.CausalSingleTokenReturnsValue();

    // NaN.cs
    [Property(MaxTest = 30)]
    public Property NanInValueReachesRowsThatAttendToIt() => _runner.NanInValueReachesRowsThatAttendToIt();

    [Property(MaxTest = 30)]
    public Property NanInValueStaysOutOfQueryTilesThatSkipItsKeyTile() =>
        _runner.NanInValueStaysOutOfQueryTilesThatSkipItsKeyTile();

    [Fact]
    public void NanInValueOfKeyInEmptyTileDoesNotLeak() => _runner.NanInValueOfKeyInEmptyTileDoesNotLeak();

    // Validation.cs: nothing is launched, so the base count.
    [Property(MaxTest = 200)]
    public Property BadInputThrowsBeforeWritingAnything() => _runner.BadInputThrowsBeforeWritingAnything();

    /// <summary>Head dims above <see cref="FlashAttention.MaxIlgpuHeadDim"/> are rejected on the host,
    /// before any device work, naming the shape.</summary>
    [Theory]
    [InlineData(257, 64)]
    [InlineData(64, 257)]
    [InlineData(512, 512)]
    public void HeadDimAbove256Throws(int headDim, int valueDim)
    {
        var shape = new AttentionShape(1, 1, 1, 2, 2, headDim, valueDim);
        var output = new float[shape.OutputLength];
        var error = Assert.Throws<ArgumentException>(() => fixture.Backend.Attention(shape,
            new float[shape.QueryLength], new float[shape.KeyLength], new float[shape.ValueLength],
            output, Span<float>.Empty, default(NoScore), default(NoMask)));
        Assert.Equal("shape", error.ParamName);
        Assert.Contains("256", error.Message);
    }

    /// <summary>Every test of the base class has a forwarder here (same name, a test attribute).</summary>
    [Fact]
    public void ForwardsEveryBaseProperty()
    {
        var tests = typeof(AttentionPropertiesBase).GetMethods()
            .Where(m => m.GetCustomAttributes(typeof(FactAttribute), true).Length > 0)
            .Select(m => m.Name).ToArray();
        Assert.NotEmpty(tests);
        var missing = tests.Where(name => typeof(IlgpuCpuAttentionProperties).GetMethod(name) is not { } m
            || m.GetCustomAttributes(typeof(FactAttribute), true).Length == 0).ToArray();
        Assert.True(missing.Length == 0, $"not forwarded: {string.Join(", ", missing)}");
    }
}

/// <summary>
/// <see cref="AttentionPropertiesBase"/> bound to an ILGPU CPU backend. Not public, so xUnit
/// does not discover it and run every property at the base class's full counts; the public
/// classes above and below forward to it with smaller counts.
/// </summary>
internal sealed class IlgpuCpuRunner(TestDevice backend) : AttentionPropertiesBase
{
    protected override TestDevice Backend => backend;
    protected override CaseLimits Limits => IlgpuCpuFixture.Limits;
    protected override (int QueryTile, int KeyTile) TileSizes(AttentionShape shape) =>
        IlgpuCpuFixture.TileSizes(shape);
}

/// <summary>ILGPU's CPU accelerator with shared-memory row reductions.</summary>
public sealed class IlgpuCpuSharedMemoryFixture() : IlgpuCpuFixture(
    new AttentionTuning { GpuReduction = GpuRowReduction.SharedMemory });

/// <summary>Binds <see cref="IlgpuCpuSharedMemoryFixture"/> to its collection.</summary>
[CollectionDefinition(Name)]
public sealed class IlgpuCpuSharedMemoryCollection : ICollectionFixture<IlgpuCpuSharedMemoryFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "IlgpuCpuSharedMemory";
}

/// <summary>
/// The ILGPU kernel with <see cref="GpuRowReduction.SharedMemory"/>: the path OpenCL devices
/// without usable sub-group shuffles take (row max and sum through shared memory and
/// barriers). Only the arithmetic of the reduction differs from the shuffle path, so this runs
/// the properties that exercise it (against the reference, masked rows, large logits, split
/// merges, NaN propagation) with 8-15 cases each (about 150 launches) instead of the
/// base class's 100-200, to keep the emulated kernel's run time under a minute. The property bodies are the base class's.
/// </summary>
[Collection(IlgpuCpuSharedMemoryCollection.Name)]
public sealed class IlgpuCpuSharedMemoryProperties(IlgpuCpuSharedMemoryFixture fixture)
{
    private readonly IlgpuCpuRunner _runner = new(fixture.Backend);

    [Property(MaxTest = 10)]
    public Property KernelMatchesReferenceForEveryVariant() => _runner.KernelMatchesReferenceForEveryVariant();

    [Property(MaxTest = 15)]
    public Property OtherModifierParametersMatchReference() => _runner.OtherModifierParametersMatchReference();

    [Property(MaxTest = 8)]
    public Property FullyMaskedRowsGiveZerosAndNegativeInfinity() =>
        _runner.FullyMaskedRowsGiveZerosAndNegativeInfinity();

    [Property(MaxTest = 15)]
    public Property LargeLogitsStayFiniteAndAccurate() => _runner.LargeLogitsStayFiniteAndAccurate();

    [Property(MaxTest = 8)]
    public Property MergingAnySplitOfTheKeysEqualsTheWhole() => _runner.MergingAnySplitOfTheKeysEqualsTheWhole();

    [Property(MaxTest = 15)]
    public Property NanInValueReachesRowsThatAttendToIt() => _runner.NanInValueReachesRowsThatAttendToIt();

    [Property(MaxTest = 15)]
    public Property NanInValueStaysOutOfQueryTilesThatSkipItsKeyTile() =>
        _runner.NanInValueStaysOutOfQueryTilesThatSkipItsKeyTile();

    [Fact]
    public void NanInValueOfKeyInEmptyTileDoesNotLeak() => _runner.NanInValueOfKeyInEmptyTileDoesNotLeak();
}
