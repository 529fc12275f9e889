using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Variants;
using Managed.Tests.Kernels;
using Managed.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.LinearAttention;

/// <summary>
/// The chunked linear-attention kernel and the feature-map kernel on ILGPU's CPU accelerator
/// (the GPU kernels emulated thread by thread): against the fp64 naive form, with a state
/// (decode, prefill in parts, Reset), a decay of 1 against none, the view overloads, and
/// every feature map against the host. Tiny shapes (N &lt;= 40, F and Dv &lt;= 8, B H &lt;= 4):
/// each launch costs a fraction of a second here.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class ChunkedLinearAttentionIlgpuCpuTests(IlgpuCpuFixture fixture)
{
    private ComputeDevice Device => fixture.Backend.Device;

    /// <summary>The cases: GQA with decays 0.5 / 0.9 in chunks of 7 (N = 37: a last chunk of
    /// 2), MQA-free two-sequence runs in one default chunk, chunk 1 with decays 1 / 0.9,
    /// chunk 3 over N = 40 (a last chunk of 1), and non-causal normalized and raw runs.</summary>
    private static LinearCase Case(int i) => i switch
    {
        0 => new(new(1, 4, 2, 37, 5, 6), true, true, 7, [0.5f, 0.9f], Seed: 201),
        1 => new(new(2, 1, 1, 33, 8, 3), true, false, null, [], Seed: 202),
        2 => new(new(2, 2, 2, 29, 4, 5), true, false, 1, [1f, 0.9f], Seed: 203),
        3 => new(new(1, 2, 1, 40, 3, 8), true, true, 3, [], Seed: 204),
        4 => new(new(1, 2, 1, 40, 3, 8), false, true, null, [], Seed: 205),
        _ => new(new(2, 2, 1, 23, 7, 2), false, false, 5, [], Seed: 206),
    };

    public static TheoryData<int> Cases() => new() { 0, 1, 2, 3, 4, 5 };

    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelMatchesNaiveForm(int i)
    {
        var c = Case(i);
        var x = c.Inputs;
        var actual = LinearData.Run(Device, c, x);
        LinearData.AssertClose(actual, LinearData.Reference(c, x),
            LinearData.Magnitude(c.Shape, x, c.Decay, c.Causal, c.Normalize),
            LinearData.Gamma(c.Shape), "output", c);
    }

    /// <summary>A normalized output whose weights sum to 0 is 0 on the device too.</summary>
    [Fact]
    public void ZeroWeightSumGivesZero()
    {
        ChunkedLinearAttentionHostTests.AssertZeroWeightSumGivesZero(Device, true, 4);
        ChunkedLinearAttentionHostTests.AssertZeroWeightSumGivesZero(Device, false, 64);
    }

    /// <summary>
    /// The kernels' tile edges, which the tiny cases above do not reach (each a single
    /// sequence and KV head, so few groups): a full chunk of 64 (the whole 64 x 64 score tile)
    /// followed by a partial one (N = 67); features across the 16-deep steps (17) and the
    /// 64-row tiles (70: two feature tiles of the chunk states); value dims of 65 and 130
    /// (two and three 64-column tiles; only the first tile's groups write z); causal with a
    /// state (S and z checked against the fp64 sums) and non-causal. These exceed the
    /// tiny-shape limits (N &lt;= 40, F and Dv &lt;= 8) but cost about as much as the other
    /// launches: one group of 128 threads per tile.
    /// </summary>
    [Theory]
    [InlineData(67, 2, 3, 64, true)]
    [InlineData(11, 70, 130, 4, true)]
    [InlineData(20, 17, 65, 16, false)]
    [InlineData(9, 70, 65, null, false)]
    [InlineData(9, 17, 130, null, true)]
    public void KernelEdgesMatchNaiveForm(int n, int f, int dv, int? chunk, bool normalize)
    {
        var shape = new LinearAttentionShape(1, 1, 1, n, f, dv);
        bool causal = chunk is not null;
        var c = new LinearCase(shape, causal, normalize, chunk, causal ? [0.95f] : [], Seed: 212 + n);
        var x = c.Inputs;
        using var state = causal ? new LinearAttentionState(Device, 1, 1, f, dv) : null;
        var actual = LinearData.Run(Device, c, x, state);
        double gamma = LinearData.Gamma(shape);
        LinearData.AssertClose(actual, LinearData.Reference(c, x),
            LinearData.Magnitude(shape, x, c.Decay, causal, normalize), gamma, "output", c);
        if (state is null) return;
        var (s, z, sm, zm) = LinearData.DirectState(shape, x, c.Decay, n);
        var (actualS, actualZ) = LinearData.Copy(state);
        LinearData.AssertClose(actualS, s, sm, gamma, "S", c);
        LinearData.AssertClose(actualZ, z, zm, gamma, "z", c);
    }

    /// <summary>Decoding token by token with a device state equals one prefill, the naive
    /// form and the fp64 state (<see cref="ChunkedLinearAttentionHostTests"/>).</summary>
    [Fact]
    public void DecodeTokenByTokenEqualsPrefill() =>
        ChunkedLinearAttentionHostTests.AssertDecodeEqualsPrefill(Device,
            new(new(1, 2, 1, 12, 4, 3), true, true, 5, [0.9f], Seed: 207));

    /// <summary>A prefill of 11 tokens, then 14 more from the device state, equals one call.
    /// </summary>
    [Fact]
    public void PrefillInTwoPartsEqualsOneCall() =>
        ChunkedLinearAttentionHostTests.AssertTwoPartsEqualOneCall(Device,
            new(new(2, 2, 2, 25, 3, 4), true, false, 4, [0.5f, 1f], Seed: 208), 11);

    /// <summary>Reset zeroes a device state; the next call equals a call without a state
    /// (the same kernel over a zero state: bit for bit).</summary>
    [Fact]
    public void ResetStartsOver()
    {
        var c = new LinearCase(new(1, 2, 2, 9, 3, 2), true, true, 4, [0.9f, 0.5f], Seed: 209);
        var x = c.Inputs;
        using var state = new LinearAttentionState(Device, 1, 2, 3, 2);
        LinearData.Run(Device, c, x, state);
        Assert.Equal(9, state.Tokens);
        Assert.Contains(LinearData.Copy(state).S, v => v != 0f);
        state.Reset();
        Assert.Equal(0, state.Tokens);
        var (s, z) = LinearData.Copy(state);
        Assert.All(s, v => Assert.Equal(0f, v));
        Assert.All(z, v => Assert.Equal(0f, v));
        var again = LinearData.Run(Device, c, x, state);
        ChunkedLinearAttentionHostTests.AssertBitIdentical(LinearData.Run(Device, c, x), again,
            "output after Reset");
    }

    /// <summary>A decay of 1 for every KV head is no decay on the device too, bit for bit.
    /// </summary>
    [Fact]
    public void DecayOfOneIsBitIdenticalToNoDecay()
    {
        var c = new LinearCase(new(1, 2, 2, 19, 4, 3), true, false, 6, [], Seed: 210);
        var x = c.Inputs;
        ChunkedLinearAttentionHostTests.AssertBitIdentical(LinearData.Run(Device, c, x),
            LinearData.Run(Device, c with { Decay = [1f, 1f] }, x), "output");
    }

    /// <summary>The view overload (inputs already on the device, a device state) gives the
    /// span overload's result bit for bit: the same kernel on the same data.</summary>
    [Fact]
    public void ViewOverloadEqualsSpanOverload()
    {
        var c = new LinearCase(new(1, 2, 1, 13, 4, 5), true, true, 4, [0.9f], Seed: 211);
        var x = c.Inputs;
        var expected = LinearData.Run(Device, c, x);
        var acc = Device.Accelerator!;
        using var q = acc.Allocate1D(x.Query);
        using var k = acc.Allocate1D(x.Key);
        using var v = acc.Allocate1D(x.Value);
        using var o = acc.Allocate1D<float>(c.Shape.OutputLength);
        using var state = new LinearAttentionState(Device, 1, 1, 4, 5);
        ChunkedLinearAttention.Forward(Device, c.Shape, q.View, k.View, v.View, c.Decay, o.View,
            c.Options, state);
        Assert.Equal(13, state.Tokens);
        var actual = o.GetAsArray1D();
        ChunkedLinearAttentionHostTests.AssertBitIdentical(expected, actual, "output");
    }

    // ------------------------------------------------------------------------------------
    // Feature maps.

    /// <summary>
    /// Every map through the feature-map kernel equals the host loop, the table maps with
    /// device tables: within 1e-7 + 1e-6 relative (both compute the same float expression;
    /// the ILGPU CPU accelerator may round an intrinsic differently by an ulp or two).
    /// </summary>
    [Theory]
    [MemberData(nameof(FeatureMapTests.Maps), MemberType = typeof(FeatureMapTests))]
    public void FeatureKernelEqualsHost(string map)
    {
        var x = FeatureMapTests.Rows(41);
        var table = FeatureMapTests.Table(map);
        var expected = FeatureMapTests.ApplyHost(map, x, table);
        var actual = ApplyDevice(map, x, table);
        new Tolerance(1e-7, 1e-6).AssertClose(actual, expected, $"{map} on {Device.Name}");
    }

    private float[] ApplyDevice(string map, float[] x, float[] table)
    {
        var device = Device;
        switch (map)
        {
            case "elu+1": return FeatureMapTests.Apply(device, default(EluPlusOneMap), x);
            case "relu": return FeatureMapTests.Apply(device, default(ReluMap), x);
            case "taylor": return FeatureMapTests.Apply(device, default(TaylorExpMap), x);
            case "cosformer": return FeatureMapTests.Apply(device, new CosFormerMap(16), x);
        }
        using var buffer = new VariantTable<float>(table).Upload(device.Accelerator!);
        var t = new DeviceTable<float>(buffer.View.SubView(0, table.Length));
        return map == "hedgehog"
            ? FeatureMapTests.Apply(device, new HedgehogMap<DeviceTable<float>>(t, FeatureMapTests.HedgehogM), x)
            : FeatureMapTests.Apply(device, new RandomFeatureMap<DeviceTable<float>>(t, FeatureMapTests.RandomM), x);
    }

    /// <summary>The view overload of the feature map on the device equals the span overload.
    /// </summary>
    [Fact]
    public void FeatureViewOverloadEqualsSpanOverload()
    {
        var x = FeatureMapTests.Rows(43);
        var map = new CosFormerMap(16);
        var expected = FeatureMapTests.Apply(Device, map, x);
        var acc = Device.Accelerator!;
        using var dx = acc.Allocate1D(x);
        using var dphi = acc.Allocate1D<float>(expected.Length);
        FeatureMapping.Apply(Device, map, 2, 3, 5, 4, dx.View, dphi.View, 3);
        Device.Synchronize();
        var actual = dphi.GetAsArray1D();
        if (!expected.AsSpan().SequenceEqual(actual))
            throw new XunitException("the view overload differs from the span overload");
    }
}
