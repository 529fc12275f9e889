using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.LinearAttention;

/// <summary>
/// <see cref="ChunkedLinearAttention"/> on the host against the fp64 naive quadratic form
/// (<see cref="ReferenceLinearAttention"/>), its independence of the chunk size, the identity
/// of a decay of 1 with no decay, and the recurrent state (decode token by token, prefill in
/// parts, Tokens, Reset, CopyTo against a direct fp64 sum). Comparisons use the forward error
/// budget of <see cref="LinearData.Gamma"/> relative to the magnitude of each output's terms
/// (<see cref="LinearData.Magnitude"/>), plus rtol 1e-4; two fp32 runs are compared with twice
/// that budget (each is within one budget of the exact value).
/// </summary>
public sealed class ChunkedLinearAttentionHostTests
{
    private static ComputeDevice Host => ComputeDevice.Host;

    /// <summary>Decays of the fixed cases: none, 0.5 / 0.9 cycled over the KV heads, 1.</summary>
    private static float[] Decay(int kind, int kvHeads) => kind switch
    {
        1 => Enumerable.Range(0, kvHeads).Select(i => i % 2 == 0 ? 0.5f : 0.9f).ToArray(),
        2 => Enumerable.Repeat(1f, kvHeads).ToArray(),
        _ => [],
    };

    /// <summary>Chunk 1, 3, 7, 64 and 100 over N = 71 (a multiple of none of them: 71 =
    /// 64 + 7, a last chunk of 8, 1, 2 and 7 tokens), causal and not, normalized and not,
    /// GQA 4 over 2 and 1 over 1, decay none / 0.5, 0.9 / 1.0 (causal only).</summary>
    public static TheoryData<int, bool, bool, bool, int> FixedCases()
    {
        var data = new TheoryData<int, bool, bool, bool, int>();
        foreach (int chunk in new[] { 1, 3, 7, 64, 100 })
            foreach (bool gqa in new[] { true, false })
                foreach (bool causal in new[] { true, false })
                    foreach (bool normalize in new[] { true, false })
                        for (int decay = 0; decay < (causal ? 3 : 1); decay++)
                            data.Add(chunk, gqa, causal, normalize, decay);
        return data;
    }

    [Theory]
    [MemberData(nameof(FixedCases))]
    public void ChunkedMatchesNaiveForm(int chunk, bool gqa, bool causal, bool normalize,
        int decay)
    {
        var shape = gqa ? new LinearAttentionShape(2, 4, 2, 71, 5, 6)
            : new LinearAttentionShape(2, 1, 1, 71, 9, 17);
        var c = new LinearCase(shape, causal, normalize, chunk, Decay(decay, shape.KvHeads),
            Seed: 1000 + chunk);
        AssertMatchesReference(c);
    }

    /// <summary>Random shapes, chunks, decays, thread counts (<see cref="LinearData.HostCases"/>).
    /// </summary>
    [Property(MaxTest = 150)]
    public Property RandomCasesMatchNaiveForm() =>
        Prop.ForAll(LinearData.HostCases.ToArbitrary(), AssertMatchesReference);

    private static void AssertMatchesReference(LinearCase c)
    {
        var x = c.Inputs;
        var actual = LinearData.Run(Host, c, x);
        LinearData.AssertClose(actual, LinearData.Reference(c, x),
            LinearData.Magnitude(c.Shape, x, c.Decay, c.Causal, c.Normalize),
            LinearData.Gamma(c.Shape), "output", c);
    }

    /// <summary>Chunk 1 (pure recurrence: every key goes through the state) and one chunk of
    /// N (pure quadratic form: no key does) agree within two budgets; so does chunk 7.</summary>
    [Property(MaxTest = 60)]
    public Property ChunkSizeDoesNotChangeTheResult() =>
        Prop.ForAll(LinearData.HostCases.ToArbitrary(), c =>
        {
            var x = c.Inputs;
            var whole = LinearData.Run(Host, c with { Chunk = c.Shape.Length }, x);
            var magnitude = LinearData.Magnitude(c.Shape, x, c.Decay, c.Causal, c.Normalize);
            double gamma = LinearData.Gamma(c.Shape);
            foreach (int chunk in new[] { 1, 7 })
                LinearData.AssertClose(LinearData.Run(Host, c with { Chunk = chunk }, x),
                    LinearData.Wide(whole), magnitude, gamma, $"chunk {chunk} vs chunk N", c,
                    factor: 2);
        });

    /// <summary>A decay of 1 for every KV head is no decay: bit for bit (lambda^j is 1
    /// exactly, and no chunk rescales the state), output and state.</summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(3, true)]
    [InlineData(7, false)]
    [InlineData(64, true)]
    public void DecayOfOneIsBitIdenticalToNoDecay(int chunk, bool normalize)
    {
        var shape = new LinearAttentionShape(2, 4, 2, 45, 8, 5);
        var c = new LinearCase(shape, true, normalize, chunk, [], Seed: 7 + chunk);
        var x = c.Inputs;
        using var plain = new LinearAttentionState(Host, 2, 2, 8, 5);
        using var ones = new LinearAttentionState(Host, 2, 2, 8, 5);
        var expected = LinearData.Run(Host, c, x, plain);
        var actual = LinearData.Run(Host, c with { Decay = [1f, 1f] }, x, ones);
        AssertBitIdentical(expected, actual, "output");
        var (s0, z0) = LinearData.Copy(plain);
        var (s1, z1) = LinearData.Copy(ones);
        AssertBitIdentical(s0, s1, "S");
        AssertBitIdentical(z0, z1, "z");
    }

    internal static void AssertBitIdentical(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                throw new XunitException($"{what}[{i}]: {actual[i]:R}, expected {expected[i]:R} bit for bit.");
    }

    /// <summary>A normalized output whose weights sum to 0 is 0 (not NaN): non-negative
    /// (ReLU-like) features where the first three keys and two query rows are all zero, so
    /// queries 0..2 read only zero keys and the zero rows weigh every key 0; the other outputs
    /// match the naive form.</summary>
    [Theory]
    [InlineData(true, 1)]
    [InlineData(true, 4)]
    [InlineData(false, 64)]
    public void ZeroWeightSumGivesZero(bool causal, int chunk) =>
        AssertZeroWeightSumGivesZero(Host, causal, chunk);

    internal static void AssertZeroWeightSumGivesZero(ComputeDevice device, bool causal, int chunk)
    {
        var shape = new LinearAttentionShape(1, 2, 1, 12, 4, 3);
        var c = new LinearCase(shape, causal, true, chunk, causal ? [0.9f] : [], Seed: 31);
        var x = c.Inputs;
        int n = shape.Length, f = shape.Features, dv = shape.ValueDim;
        for (int t = 0; t < 3; t++) Array.Clear(x.Key, t * f, f);
        foreach (int row in new[] { 5, n + 7 }) Array.Clear(x.Query, row * f, f); // head 0 t 5, head 1 t 7
        var actual = LinearData.Run(device, c, x);
        Assert.All(actual, v => Assert.False(float.IsNaN(v)));
        var zeroRows = new List<int> { 5, n + 7 };
        if (causal) zeroRows.AddRange([0, 1, 2, n, n + 1, n + 2]);
        foreach (int row in zeroRows)
            for (int col = 0; col < dv; col++)
                Assert.Equal(0f, actual[row * dv + col]);
        LinearData.AssertClose(actual, LinearData.Reference(c, x),
            LinearData.Magnitude(shape, x, c.Decay, causal, true), LinearData.Gamma(shape),
            "output", c);
    }

    // ------------------------------------------------------------------------------------
    // The recurrent state.

    /// <summary>Cases of the state tests: GQA with two decays, MQA normalized with no
    /// decay, a long decay-0.99 run through several default chunks.</summary>
    public static TheoryData<int> StateCases() => new() { 0, 1, 2, 3 };

    internal static LinearCase StateCase(int i) => i switch
    {
        0 => new(new(2, 4, 2, 37, 6, 5), true, true, 7, [0.5f, 0.9f], Seed: 11),
        1 => new(new(1, 3, 1, 20, 16, 3), true, true, null, [], Seed: 12),
        2 => new(new(2, 2, 2, 150, 4, 9), true, false, null, [0.99f, 1f], Seed: 13),
        _ => new(new(1, 2, 1, 33, 5, 4), true, false, 3, [0.9f], Seed: 14),
    };

    /// <summary>Decoding token by token (calls of length 1, each starting from the state the
    /// last one left) equals one prefill over the whole sequence, matches the naive form, and
    /// leaves the state the prefill leaves; Tokens counts the calls.</summary>
    [Theory]
    [MemberData(nameof(StateCases))]
    public void DecodeTokenByTokenEqualsPrefill(int i) => AssertDecodeEqualsPrefill(Host, StateCase(i));

    internal static void AssertDecodeEqualsPrefill(ComputeDevice device, LinearCase c)
    {
        var shape = c.Shape;
        var x = c.Inputs;
        var magnitude = LinearData.Magnitude(shape, x, c.Decay, true, c.Normalize);
        double gamma = LinearData.Gamma(shape);
        using var prefillState = new LinearAttentionState(device, shape.Batch, shape.KvHeads,
            shape.Features, shape.ValueDim);
        var prefill = LinearData.Run(device, c, x, prefillState);
        Assert.Equal(shape.Length, prefillState.Tokens);

        using var state = new LinearAttentionState(device, shape.Batch, shape.KvHeads,
            shape.Features, shape.ValueDim);
        var decoded = LinearData.Decode(device, c, x, state);
        Assert.Equal(shape.Length, state.Tokens);
        LinearData.AssertClose(decoded, LinearData.Reference(c, x), magnitude, gamma,
            "decode vs naive form", c);
        LinearData.AssertClose(decoded, LinearData.Wide(prefill), magnitude, gamma,
            "decode vs prefill", c, factor: 2);

        var (s, z, sm, zm) = LinearData.DirectState(shape, x, c.Decay, shape.Length);
        var (decS, decZ) = LinearData.Copy(state);
        var (preS, preZ) = LinearData.Copy(prefillState);
        LinearData.AssertClose(decS, s, sm, gamma, "S after decode", c);
        LinearData.AssertClose(decZ, z, zm, gamma, "z after decode", c);
        LinearData.AssertClose(preS, s, sm, gamma, "S after prefill", c);
        LinearData.AssertClose(preZ, z, zm, gamma, "z after prefill", c);
    }

    /// <summary>A prefill of the first tokens with a state, then a second call over the rest
    /// from that state, equals one call over everything; the second call alone matches the
    /// naive form started from the fp64 state of the first part; Tokens adds up.</summary>
    [Theory]
    [InlineData(0, 1)]
    [InlineData(0, 20)]
    [InlineData(1, 13)]
    [InlineData(2, 64)]
    [InlineData(2, 101)]
    [InlineData(3, 32)]
    public void PrefillInTwoPartsEqualsOneCall(int i, int first) =>
        AssertTwoPartsEqualOneCall(Host, StateCase(i), first);

    internal static void AssertTwoPartsEqualOneCall(ComputeDevice device, LinearCase c, int first)
    {
        var shape = c.Shape;
        int n = shape.Length, second = n - first, rows = shape.Batch * shape.Heads;
        var x = c.Inputs;
        var whole = LinearData.Run(device, c, x);
        var magnitude = LinearData.Magnitude(shape, x, c.Decay, true, c.Normalize);
        double gamma = LinearData.Gamma(shape);

        using var state = new LinearAttentionState(device, shape.Batch, shape.KvHeads,
            shape.Features, shape.ValueDim);
        var c1 = c with { Shape = shape with { Length = first } };
        var c2 = c with { Shape = shape with { Length = second } };
        var x1 = LinearData.Tokens(shape, x, 0, first);
        var x2 = LinearData.Tokens(shape, x, first, second);
        var o1 = LinearData.Run(device, c1, x1, state);
        Assert.Equal(first, state.Tokens);
        var (s1, z1) = LinearData.Copy(state);
        var o2 = LinearData.Run(device, c2, x2, state);
        Assert.Equal(n, state.Tokens);

        var joined = new float[shape.OutputLength];
        LinearData.Place(joined, o1, rows, n, shape.ValueDim, 0, first);
        LinearData.Place(joined, o2, rows, n, shape.ValueDim, first, second);
        LinearData.AssertClose(joined, LinearData.Wide(whole), magnitude, gamma,
            $"two parts ({first} + {second}) vs one call", c, factor: 2);
        LinearData.AssertClose(joined, LinearData.Reference(c, x), magnitude, gamma,
            "two parts vs naive form", c);

        // The state the first part left is the fp64 state of its tokens.
        var (s, z, sm, zm) = LinearData.DirectState(shape, x, c.Decay, first);
        LinearData.AssertClose(s1, s, sm, gamma, "S after the first part", c);
        LinearData.AssertClose(z1, z, zm, gamma, "z after the first part", c);
        // The second part against the naive form started from that state (the reference's
        // initialS path); its terms' magnitudes use the state's (sum |k| |v|, sum |k|), which
        // bound the error the fp32 state carries in.
        var expected2 = ReferenceLinearAttention.Forward(c2.Shape, x2.Query, x2.Key, x2.Value,
            c.Decay, true, c.Normalize, s.Select(v => (float)v).ToArray(),
            z.Select(v => (float)v).ToArray());
        var magnitude2 = LinearData.Magnitude(c2.Shape, x2, c.Decay, true, c.Normalize,
            sm.Select(v => (float)v).ToArray(), zm.Select(v => (float)v).ToArray());
        LinearData.AssertClose(o2, expected2, magnitude2, gamma,
            "second part vs naive form from the fp64 state", c);
    }

    /// <summary>CopyTo after a decayed prefill returns S = sum_s lambda^(t-s) phi(k_s) v_s^T
    /// and z = sum_s lambda^(t-s) phi(k_s), t the last token, computed directly in fp64, for
    /// every sequence and KV head (each with its own lambda).</summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(5, true)]
    [InlineData(64, false)]
    [InlineData(200, true)]
    public void CopyToMatchesDirectSum(int chunk, bool normalize)
    {
        var shape = new LinearAttentionShape(3, 6, 3, 77, 7, 10);
        var c = new LinearCase(shape, true, normalize, chunk, [0.5f, 0.95f, 1f], Seed: 21 + chunk);
        var x = c.Inputs;
        using var state = new LinearAttentionState(Host, 3, 3, 7, 10);
        LinearData.Run(Host, c, x, state);
        var (s, z, sm, zm) = LinearData.DirectState(shape, x, c.Decay, shape.Length);
        var (actualS, actualZ) = LinearData.Copy(state);
        double gamma = LinearData.Gamma(shape);
        LinearData.AssertClose(actualS, s, sm, gamma, "S", c);
        LinearData.AssertClose(actualZ, z, zm, gamma, "z", c);
    }

    /// <summary>Reset returns to zero tokens and a zero S and z; the next call equals a call
    /// without a state, bit for bit (the same loops over a zero state).</summary>
    [Fact]
    public void ResetStartsOver()
    {
        var c = StateCase(0);
        var shape = c.Shape;
        var x = c.Inputs;
        using var state = new LinearAttentionState(Host, shape.Batch, shape.KvHeads,
            shape.Features, shape.ValueDim);
        LinearData.Run(Host, c, x, state);
        Assert.Equal(shape.Length, state.Tokens);
        var (s, _) = LinearData.Copy(state);
        Assert.Contains(s, v => v != 0f);
        state.Reset();
        Assert.Equal(0, state.Tokens);
        var (s0, z0) = LinearData.Copy(state);
        Assert.All(s0, v => Assert.Equal(0f, v));
        Assert.All(z0, v => Assert.Equal(0f, v));
        var again = LinearData.Run(Host, c, x, state);
        AssertBitIdentical(LinearData.Run(Host, c, x), again, "output after Reset");
        Assert.Equal(shape.Length, state.Tokens);
    }

    /// <summary>A fresh state is zero, and a state serves calls of different lengths (Tokens
    /// is the sum) and continues a sequence across them.</summary>
    [Fact]
    public void FreshStateIsZeroAndTokensAddUp()
    {
        using var state = new LinearAttentionState(Host, 2, 3, 4, 5);
        Assert.Equal(0, state.Tokens);
        Assert.Equal(2 * 3 * 4 * 5, state.StateLength);
        Assert.Equal(2 * 3 * 4, state.NormalizerLength);
        var (s, z) = LinearData.Copy(state);
        Assert.All(s, v => Assert.Equal(0f, v));
        Assert.All(z, v => Assert.Equal(0f, v));
        int total = 0;
        foreach (int n in new[] { 1, 7, 1, 64, 3 })
        {
            var c = new LinearCase(new(2, 3, 3, n, 4, 5), true, true, 4, [], Seed: n);
            LinearData.Run(Host, c, c.Inputs, state);
            total += n;
            Assert.Equal(total, state.Tokens);
        }
    }
}
