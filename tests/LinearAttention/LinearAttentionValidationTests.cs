using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Variants;
using Managed.Tests.Kernels;
using Xunit;

namespace Managed.Tests.LinearAttention;

/// <summary>
/// Every bad argument of <see cref="ChunkedLinearAttention.Forward(ComputeDevice,
/// LinearAttentionShape, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float},
/// ReadOnlySpan{float}, Span{float}, LinearAttentionOptions, LinearAttentionState?)"/>, of
/// <see cref="LinearAttentionState"/> and of <see cref="FeatureMapping"/> throws before
/// anything is written (the output keeps its sentinel, a state its tokens and contents),
/// naming the argument, on the host and on the ILGPU CPU accelerator.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class LinearAttentionValidationTests(IlgpuCpuFixture fixture)
{
    private const float Sentinel = 12345f;
    private const int B = 1, H = 2, Hk = 1, N = 5, F = 3, Dv = 4;
    private static readonly LinearAttentionShape Ok = new(B, H, Hk, N, F, Dv);
    private static readonly LinearAttentionOptions Causal = new() { Causal = true };

    /// <summary>A call with one thing changed from a valid causal (1, 2 over 1, 5, 3, 4) call,
    /// and the parameter name and message fragment its exception must carry.</summary>
    public sealed record Bad(string What, string Param, string Message,
        LinearAttentionShape Shape, int Q = B * H * N * F, int K = B * Hk * N * F,
        int V = B * Hk * N * Dv, int O = B * H * N * Dv, float[]? Decay = null,
        LinearAttentionOptions? Options = null, bool DeviceOnly = false)
    {
        public override string ToString() => What;
    }

    private static readonly Bad[] BadCalls =
    [
        new("query short", "query", "batch 1 x heads 2 x length 5 x features 3", Ok, Q: 29),
        new("query long", "query", "batch 1 x heads 2 x length 5 x features 3", Ok, Q: 31),
        new("key short", "key", "batch 1 x kvHeads 1 x length 5 x features 3", Ok, K: 14),
        new("key of the query's heads", "key", "kvHeads 1", Ok, K: 30),
        new("value short", "value", "batch 1 x kvHeads 1 x length 5 x valueDim 4", Ok, V: 19),
        new("value long", "value", "valueDim 4", Ok, V: 21),
        new("output short", "output", "batch 1 x heads 2 x length 5 x valueDim 4", Ok, O: 39),
        new("output long", "output", "valueDim 4", Ok, O: 41),
        new("decay with a non-causal call", "decay", "causal", Ok, Decay: [0.5f],
            Options: new LinearAttentionOptions()),
        new("decay zero", "decay", "(0, 1]", Ok, Decay: [0f]),
        new("decay 1.5", "decay", "(0, 1]", Ok, Decay: [1.5f]),
        new("decay NaN", "decay", "(0, 1]", Ok, Decay: [float.NaN]),
        new("decay negative", "decay", "(0, 1]", Ok, Decay: [-0.5f]),
        new("decay infinite", "decay", "(0, 1]", Ok, Decay: [float.PositiveInfinity]),
        new("decay per query head", "decay", "kvHeads 1", Ok, Decay: [0.5f, 0.5f]),
        new("chunk zero", "options", "ChunkSize", Ok, Options: Causal with { ChunkSize = 0 }),
        new("chunk negative", "options", "ChunkSize", Ok, Options: Causal with { ChunkSize = -3 }),
        new("chunk 65 on a device", "options", "ChunkSize", Ok,
            Options: Causal with { ChunkSize = 65 }, DeviceOnly: true),
        new("threads zero", "options", "MaxDegreeOfParallelism", Ok,
            Options: Causal with { MaxDegreeOfParallelism = 0 }),
        new("heads not a multiple of kvHeads", "shape", "multiple of KvHeads",
            Ok with { Heads = 3, KvHeads = 2 }, Q: 45, K: 30, V: 40, O: 60),
        new("features zero", "shape", "Features", Ok with { Features = 0 }, Q: 0, K: 0),
        new("length negative", "shape", "Length", Ok with { Length = -1 }),
    ];

    public static TheoryData<bool, Bad> Cases()
    {
        var data = new TheoryData<bool, Bad>();
        foreach (bool ilgpu in new[] { false, true })
            foreach (var bad in BadCalls)
                if (ilgpu || !bad.DeviceOnly) data.Add(ilgpu, bad);
        return data;
    }

    private ComputeDevice Device(bool ilgpu) => ilgpu ? fixture.Backend.Device : ComputeDevice.Host;

    private static float[] Filled(int n) => Enumerable.Repeat(Sentinel, n).ToArray();

    private static void AssertUntouched(float[] output) =>
        Assert.All(output, v => Assert.Equal(Sentinel, v));

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadCallThrowsBeforeWriting(bool ilgpu, Bad bad)
    {
        var output = Filled(bad.O);
        var e = Assert.Throws<ArgumentException>(() => ChunkedLinearAttention.Forward(
            Device(ilgpu), bad.Shape, new float[bad.Q], new float[bad.K], new float[bad.V],
            bad.Decay ?? [], output, bad.Options ?? Causal));
        Assert.Equal(bad.Param, e.ParamName);
        Assert.Contains(bad.Message, e.Message);
        AssertUntouched(output);
    }

    /// <summary>The same bad calls with a state: the state keeps its tokens and contents.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void BadCallLeavesTheStateAlone(bool ilgpu, Bad bad)
    {
        if (bad.Param == "shape" || bad.Options is { Causal: false }) return; // state checks differ
        var device = Device(ilgpu);
        using var state = new LinearAttentionState(device, B, Hk, F, Dv);
        var c = new LinearCase(Ok, true, false, null, [0.5f], Seed: 3);
        LinearData.Run(device, c, c.Inputs, state);
        var (s, z) = LinearData.Copy(state);
        var output = Filled(bad.O);
        Assert.Throws<ArgumentException>(() => ChunkedLinearAttention.Forward(device, bad.Shape,
            new float[bad.Q], new float[bad.K], new float[bad.V], bad.Decay ?? [], output,
            bad.Options ?? Causal, state));
        AssertUntouched(output);
        Assert.Equal(N, state.Tokens);
        var (s1, z1) = LinearData.Copy(state);
        Assert.Equal(s, s1);
        Assert.Equal(z, z1);
    }

    /// <summary>Chunks longer than the device's 64 are fine on the host.</summary>
    [Fact]
    public void HostTakesAnyChunk()
    {
        var c = new LinearCase(Ok, true, true, 65, [], Seed: 4);
        LinearData.Run(ComputeDevice.Host, c, c.Inputs);
        c = c with { Chunk = int.MaxValue };
        LinearData.Run(ComputeDevice.Host, c, c.Inputs);
    }

    public static TheoryData<bool> Both() => new() { false, true };

    /// <summary>A state with a non-causal call, of another size (each dimension), of another
    /// device, or disposed is refused before anything is written.</summary>
    [Theory]
    [MemberData(nameof(Both))]
    public void BadStateThrowsBeforeWriting(bool ilgpu)
    {
        var device = Device(ilgpu);
        var q = new float[Ok.QueryLength];
        var k = new float[Ok.KeyLength];
        var v = new float[Ok.ValueLength];
        void Check(LinearAttentionState state, LinearAttentionOptions options, string message)
        {
            var output = Filled((int)Ok.OutputLength);
            var e = Assert.Throws<ArgumentException>(() =>
                ChunkedLinearAttention.Forward(device, Ok, q, k, v, [], output, options, state));
            Assert.Equal("state", e.ParamName);
            Assert.Contains(message, e.Message);
            AssertUntouched(output);
            Assert.Equal(0, state.Tokens);
        }
        using (var state = new LinearAttentionState(device, B, Hk, F, Dv))
            Check(state, new LinearAttentionOptions(), "non-causal");
        foreach (var (b, hk, f, dv) in new[] { (2, Hk, F, Dv), (B, 2, F, Dv), (B, Hk, 4, Dv), (B, Hk, F, 3) })
        {
            using var state = new LinearAttentionState(device, b, hk, f, dv);
            Check(state, Causal, "the call needs 1 x 1 x 3 x 4");
        }
        var other = ilgpu ? ComputeDevice.Host : fixture.Backend.Device;
        using (var state = new LinearAttentionState(other, B, Hk, F, Dv))
            Check(state, Causal, "lives on");

        var disposed = new LinearAttentionState(device, B, Hk, F, Dv);
        disposed.Dispose();
        disposed.Dispose(); // idempotent
        var untouched = Filled((int)Ok.OutputLength);
        Assert.Throws<ObjectDisposedException>(() =>
            ChunkedLinearAttention.Forward(device, Ok, q, k, v, [], untouched, Causal, disposed));
        AssertUntouched(untouched);
        Assert.Throws<ObjectDisposedException>(() => disposed.Reset());
        Assert.Throws<ObjectDisposedException>(() =>
            disposed.CopyTo(new float[disposed.StateLength], new float[disposed.NormalizerLength]));
    }

    /// <summary>CopyTo with spans of the wrong lengths names them; a state of a non-positive
    /// size is refused.</summary>
    [Theory]
    [MemberData(nameof(Both))]
    public void StateArgumentsAreChecked(bool ilgpu)
    {
        var device = Device(ilgpu);
        using var state = new LinearAttentionState(device, 2, 3, 4, 5);
        Assert.Equal("state", Assert.Throws<ArgumentException>(() =>
            state.CopyTo(new float[119], new float[24])).ParamName);
        Assert.Equal("normalizer", Assert.Throws<ArgumentException>(() =>
            state.CopyTo(new float[120], new float[25])).ParamName);
        Assert.Equal("state", Assert.Throws<ArgumentException>(() =>
            new LinearAttentionState(device, 1, 0, 4, 5)).ParamName);
        Assert.Equal("state", Assert.Throws<ArgumentException>(() =>
            new LinearAttentionState(device, 1, 1, 4, -5)).ParamName);
        Assert.Throws<ArgumentNullException>(() => new LinearAttentionState(null!, 1, 1, 1, 1));
    }

    /// <summary>An output that overlaps an input, and a null device, are refused.</summary>
    [Fact]
    public void OverlapAndNullDeviceAreRefused()
    {
        var buffer = Filled((int)(Ok.QueryLength + Ok.OutputLength));
        var k = new float[Ok.KeyLength];
        var v = new float[Ok.ValueLength];
        var e = Assert.Throws<ArgumentException>(() => ChunkedLinearAttention.Forward(
            ComputeDevice.Host, Ok, buffer.AsSpan(0, (int)Ok.QueryLength), k, v, [],
            buffer.AsSpan(10, (int)Ok.OutputLength), Causal));
        Assert.Equal("output", e.ParamName);
        AssertUntouched(buffer);
        Assert.Throws<ArgumentNullException>(() => ChunkedLinearAttention.Forward(null!, Ok,
            new float[Ok.QueryLength], k, v, [], new float[Ok.OutputLength], Causal));
    }

    /// <summary>The host has no views: the view overloads name the device.</summary>
    [Fact]
    public void HostRejectsViews()
    {
        var acc = fixture.Backend.Device.Accelerator!;
        using var q = acc.Allocate1D<float>(Ok.QueryLength);
        using var k = acc.Allocate1D<float>(Ok.KeyLength);
        using var v = acc.Allocate1D<float>(Ok.ValueLength);
        using var o = acc.Allocate1D<float>(Ok.OutputLength);
        Assert.Equal("device", Assert.Throws<ArgumentException>(() => ChunkedLinearAttention.Forward(
            ComputeDevice.Host, Ok, q.View, k.View, v.View, [], o.View, Causal)).ParamName);
        Assert.Equal("device", Assert.Throws<ArgumentException>(() => FeatureMapping.Apply(
            ComputeDevice.Host, default(ReluMap), 1, 2, 5, 3, q.View, o.View.SubView(0, 30))).ParamName);
    }

    // ------------------------------------------------------------------------------------
    // Feature maps.

    private const int Rows = 2 * 3 * 4, Dim = 5;

    private static void AssertMapThrows<TMap>(ComputeDevice device, TMap map, string param,
        string message, int x = Rows * Dim, int phi = -1, int dim = Dim, int firstPosition = 0)
        where TMap : struct, IFeatureMap
    {
        var output = Filled(phi >= 0 ? phi : Rows * Math.Max(1, SafeFeatures(map, dim)));
        var e = Assert.Throws<ArgumentException>(() => FeatureMapping.Apply(device, map, 2, 3, 4,
            dim, new float[x], output, firstPosition));
        Assert.Equal(param, e.ParamName);
        Assert.Contains(message, e.Message);
        AssertUntouched(output);
    }

    private static int SafeFeatures<TMap>(TMap map, int dim) where TMap : struct, IFeatureMap =>
        Math.Min(map.Features(dim), 1 << 16);

    /// <summary>A table map whose table does not fit (m x dim, heads x m x (dim + 1)), a map
    /// without parameters, a Taylor dim above 4096, wrong x / phi lengths and a negative
    /// position are refused on either side, before phi is written.</summary>
    [Theory]
    [MemberData(nameof(Both))]
    public void BadFeatureMapCallThrowsBeforeWriting(bool ilgpu)
    {
        var device = Device(ilgpu);
        var projection = RandomFeatureMap.Projection(6, Dim, 1);
        var weights = new float[3 * 2 * (Dim + 1)];
        if (!ilgpu)
        {
            var shortProjection = new VariantTable<float>(projection.AsSpan(0, 6 * Dim - 1)).Host;
            AssertMapThrows(device, new RandomFeatureMap<HostTable<float>>(shortProjection, 6),
                "map", "features 6 x dim 5", phi: Rows * 6);
            AssertMapThrows(device, new RandomFeatureMap<HostTable<float>>(
                new VariantTable<float>(projection).Host, 7), "map", "features 7 x dim 5");
            AssertMapThrows(device, new HedgehogMap<HostTable<float>>(
                new VariantTable<float>(weights.AsSpan(1)).Host, 2), "map", "heads 3 x features 2");
            AssertMapThrows(device, default(RandomFeatureMap<HostTable<float>>), "map",
                "features = 0", phi: 0);
            AssertMapThrows(device, default(HedgehogMap<HostTable<float>>), "map", "features = 0",
                phi: 0);
        }
        else
        {
            var acc = fixture.Backend.Device.Accelerator!;
            using var p = new VariantTable<float>(projection).Upload(acc);
            using var w = new VariantTable<float>(weights).Upload(acc);
            AssertMapThrows(device, new RandomFeatureMap<DeviceTable<float>>(
                new DeviceTable<float>(p.View.SubView(0, 6 * Dim - 1)), 6), "map",
                "features 6 x dim 5", phi: Rows * 6);
            AssertMapThrows(device, new HedgehogMap<DeviceTable<float>>(
                new DeviceTable<float>(w.View.SubView(0, weights.Length - 1)), 2), "map",
                "heads 3 x features 2");
        }
        AssertMapThrows(device, new CosFormerMap(0), "map", "maxLength", phi: Rows * 2 * Dim);
        AssertMapThrows(device, default(TaylorExpMap), "map", "4096", x: 1, phi: 1, dim: 4097);
        AssertMapThrows(device, default(ReluMap), "x", "dim 5", x: Rows * Dim - 1);
        AssertMapThrows(device, default(EluPlusOneMap), "phi", "features 5", phi: Rows * Dim + 1);
        AssertMapThrows(device, default(TaylorExpMap), "phi", "features 31", phi: Rows * Dim);
        AssertMapThrows(device, new CosFormerMap(8), "firstPosition", "negative", firstPosition: -1);
    }

    /// <summary>A map that reads a HostTable is refused on an ILGPU device, and one that
    /// reads a DeviceTable on the host, naming the map.</summary>
    [Fact]
    public void TableOfTheOtherSideIsRefused()
    {
        var device = fixture.Backend.Device;
        var projection = RandomFeatureMap.Projection(6, Dim, 1);
        var weights = new float[3 * 2 * (Dim + 1)];
        AssertMapThrows(device, new RandomFeatureMap<HostTable<float>>(
            new VariantTable<float>(projection).Host, 6), "map", "HostTable", phi: Rows * 6);
        AssertMapThrows(device, new HedgehogMap<HostTable<float>>(
            new VariantTable<float>(weights).Host, 2), "map", "HostTable", phi: Rows * 4);
        using var p = new VariantTable<float>(projection).Upload(device.Accelerator!);
        AssertMapThrows(ComputeDevice.Host, new RandomFeatureMap<DeviceTable<float>>(
            new DeviceTable<float>(p.View.SubView(0, projection.Length)), 6), "map", "DeviceTable",
            phi: Rows * 6);
    }
}
