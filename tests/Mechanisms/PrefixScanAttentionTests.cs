using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.Mechanisms;

/// <summary>
/// The prefix scan of Aaren on the host: every prefix output equals exact causal attention of
/// the single query (ReferenceAttention with every query row equal to q and a causal mask);
/// the result does not depend on the host's block count or threads beyond rounding, also when
/// every key is a new maximum (a rescale per key) or none is; a scan in parts carried by the
/// state, in place or not, equals the scan in one call; the recurrent step equals both. The
/// checks are static so the ILGPU CPU tests run them on the device.
/// </summary>
public sealed class PrefixScanAttentionTests
{
    /// <summary>Equal heads, GQA with a scale, a long sequence, one key, a value dim that is
    /// not a multiple of 16.</summary>
    public static TheoryData<int> Cases() => new() { 0, 1, 2, 3, 4 };

    internal static (PrefixScanShape Shape, float? Scale) Case(int i) => i switch
    {
        0 => (new(1, 2, 2, 40, 8, 8), null),
        1 => (new(2, 4, 2, 77, 16, 12), 0.8f),
        2 => (new(1, 2, 1, 1500, 8, 5), null),
        3 => (new(2, 2, 1, 1, 4, 3), null),
        _ => (new(1, 1, 1, 33, 4, 21), 2f),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesCausalAttentionOfEachPrefix(int i)
    {
        var (shape, scale) = Case(i);
        AssertMatchesCausalReference(ComputeDevice.Host, shape, new() { Scale = scale }, 300 + i);
    }

    /// <summary>One to many blocks (one key per block at the end), on one to four threads;
    /// every run against the one-block run and the reference.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void HostBlockCountDoesNotChangeTheResult(int keys)
    {
        var s = new PrefixScanShape(2, 2, 1, 700, 8, 19);
        var (q, k, v) = keys switch
        {
            0 => Inputs(s, 310, 3f),
            1 => Monotone(s, rising: true),
            _ => Monotone(s, rising: false),
        };
        var expected = Reference(s, q, k, v, null);
        var single = Run(ComputeDevice.Host, s, q, k, v,
            new() { HostBlocks = 1, MaxDegreeOfParallelism = 1 });
        AssertClose(single.Output, expected, 1e-5, 1e-4, "one block");
        foreach (var (blocks, threads) in new (int?, int?)[]
                 { (2, 1), (2, 2), (7, 2), (64, 4), (700, 3), (5000, 2), (null, 1), (null, 8) })
        {
            var run = Run(ComputeDevice.Host, s, q, k, v,
                new() { HostBlocks = blocks, MaxDegreeOfParallelism = threads });
            string what = $"blocks {blocks}, threads {threads}";
            AssertClose(run.Output, single.Output, 2e-6, 1e-5, what + " output");
            AssertClose(run.State, single.State, 2e-6, 1e-5,
                what + " state");
            AssertClose(run.Output, expected, 1e-5, 1e-4, what + " vs reference");
        }
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    public void ScanInPartsEqualsOneScan(int blocks, bool inPlace) =>
        AssertPartsEqualWhole(ComputeDevice.Host, new(2, 2, 1, 301, 8, 6), 320,
            new() { HostBlocks = blocks }, inPlace);

    /// <summary>Step, token by token from the empty state, against one Forward call: outputs
    /// and the final state.</summary>
    [Fact]
    public void StepEqualsForward()
    {
        var s = new PrefixScanShape(1, 2, 1, 50, 8, 7);
        var (q, k, v) = Inputs(s, 330, 3f);
        var whole = Run(ComputeDevice.Host, s, q, k, v, default);
        int d = s.HeadDim, dv = s.ValueDim;
        var state = new float[dv + 2];
        var o = new float[dv];
        for (int h = 0; h < s.Heads; h++)
        {
            PrefixScanAttention.InitializeState(state, dv);
            for (int t = 0; t < s.Length; t++)
            {
                PrefixScanAttention.Step(q.AsSpan(h * d, d), k.AsSpan(t * d, d),
                    v.AsSpan(t * dv, dv), state, o);
                AssertClose(o, ToDouble(whole.Output.AsSpan((h * s.Length + t) * dv, dv)
                    .ToArray()), 1e-6, 1e-5, $"head {h} step {t}");
            }
            AssertClose(state, ToDouble(whole.State.AsSpan(h * (dv + 2), dv + 2).ToArray()),
                1e-6, 1e-5, $"head {h} state");
        }
    }

    [Fact]
    public void InitializeStateWritesEmptyRecords()
    {
        var state = Enumerable.Repeat(7f, 12).ToArray();
        PrefixScanAttention.InitializeState(state, 4);
        Assert.Equal(new[] { float.NegativeInfinity, 0, 0, 0, 0, 0,
            float.NegativeInfinity, 0, 0, 0, 0, 0 }, state);
    }

    /// <summary>The empty state as an initial state is the same as none.</summary>
    [Fact]
    public void EmptyInitialStateEqualsNone()
    {
        var s = new PrefixScanShape(1, 2, 2, 20, 4, 3);
        var (q, k, v) = Inputs(s, 340, 2f);
        var none = Run(ComputeDevice.Host, s, q, k, v, default);
        var empty = new float[s.StateLength];
        PrefixScanAttention.InitializeState(empty, s.ValueDim);
        var output = new float[s.OutputLength];
        PrefixScanAttention.Forward(ComputeDevice.Host, s, q, k, v, output, empty);
        Assert.Equal(none.Output, output);
    }

    internal static (float[] Q, float[] K, float[] V) Inputs(PrefixScanShape s, int seed,
        float spread) =>
        (Uniform(seed, s.QueryLength, spread), Uniform(seed + 1, s.KeyLength, spread),
         Uniform(seed + 2, s.ValueLength));

    /// <summary>q = e_0 and k_j[0] = +-0.05 j: every key a new maximum (rising, a rescale at
    /// each key) or every key below the first (falling).</summary>
    private static (float[] Q, float[] K, float[] V) Monotone(PrefixScanShape s, bool rising)
    {
        var q = new float[s.QueryLength];
        for (int bh = 0; bh < s.Batch * s.Heads; bh++) q[bh * s.HeadDim] = 1f;
        var k = Uniform(311, s.KeyLength, 0.1f);
        for (int item = 0; item < s.Batch * s.KvHeads; item++)
        for (int j = 0; j < s.Length; j++)
            k[((long)item * s.Length + j) * s.HeadDim] = (rising ? 0.05f : -0.05f) * j;
        return (q, k, Uniform(312, s.ValueLength));
    }

    /// <summary>Causal attention of seqQ = length copies of q over the keys (row t reads keys
    /// 0..t), in double.</summary>
    internal static double[] Reference(PrefixScanShape s, float[] q, float[] k, float[] v,
        float? scale)
    {
        int n = s.Length, d = s.HeadDim;
        var rows = new float[(long)s.Batch * s.Heads * n * d];
        for (int bh = 0; bh < s.Batch * s.Heads; bh++)
        for (int t = 0; t < n; t++)
            Array.Copy(q, (long)bh * d, rows, ((long)bh * n + t) * d, d);
        var shape = new AttentionShape(s.Batch, s.Heads, s.KvHeads, n, n, d, s.ValueDim);
        return ReferenceAttention.Forward(shape, rows, k, v, default(NoScore),
            default(CausalMask), new AttentionOptions { Scale = scale }).Output;
    }

    internal static (float[] Output, float[] State) Run(ComputeDevice device,
        PrefixScanShape s, float[] q, float[] k, float[] v, PrefixScanOptions options,
        float[]? initial = null)
    {
        var output = new float[s.OutputLength];
        var state = new float[s.StateLength];
        PrefixScanAttention.Forward(device, s, q, k, v, output, initial, state, options);
        return (output, state);
    }

    internal static void AssertMatchesCausalReference(ComputeDevice device, PrefixScanShape s,
        PrefixScanOptions options, int seed)
    {
        var (q, k, v) = Inputs(s, seed, 3f);
        var (output, state) = Run(device, s, q, k, v, options);
        AssertClose(output, Reference(s, q, k, v, options.Scale), 1e-5, 1e-4, $"{s} output");
        // The state after the last key reproduces the last output: a / l.
        int dv = s.ValueDim;
        for (int bh = 0; bh < s.Batch * s.Heads; bh++)
        {
            var record = state.AsSpan(bh * (dv + 2), dv + 2);
            var last = output.AsSpan(((bh + 1) * s.Length - 1) * dv, dv);
            Assert.True(float.IsFinite(record[0]) && record[1] >= 1f, $"state {bh}: {record[0]}, "
                + $"{record[1]}");
            for (int c = 0; c < dv; c++)
                Assert.Equal(last[c], record[2 + c] / record[1], 1e-5f);
        }
    }

    /// <summary>Keys 0..n1-1 in one call, the rest in a second that starts from the first's
    /// state (the same array when in place): the second's outputs are the whole scan's tail,
    /// and its final state the whole scan's.</summary>
    internal static void AssertPartsEqualWhole(ComputeDevice device, PrefixScanShape s,
        int seed, PrefixScanOptions options, bool inPlace)
    {
        var (q, k, v) = Inputs(s, seed, 3f);
        var whole = Run(device, s, q, k, v, options);
        int n1 = s.Length / 3, n2 = s.Length - n1, items = s.Batch * s.KvHeads;
        var s1 = s with { Length = n1 };
        var s2 = s with { Length = n2 };
        var first = Run(device, s1, q, Rows(k, items, s.Length, s.HeadDim, 0, n1),
            Rows(v, items, s.Length, s.ValueDim, 0, n1), options);
        var k2 = Rows(k, items, s.Length, s.HeadDim, n1, n2);
        var v2 = Rows(v, items, s.Length, s.ValueDim, n1, n2);
        var tail = Rows(whole.Output, s.Batch * s.Heads, s.Length, s.ValueDim, n1, n2);
        float[] output2 = new float[s2.OutputLength], state2;
        if (inPlace)
        {
            state2 = first.State;
            PrefixScanAttention.Forward(device, s2, q, k2, v2, output2, state2, state2, options);
        }
        else
        {
            (output2, state2) = Run(device, s2, q, k2, v2, options, first.State);
        }
        AssertClose(first.Output, Rows(whole.Output, s.Batch * s.Heads, s.Length, s.ValueDim,
            0, n1), 1e-6, 1e-5, "first part");
        AssertClose(output2, tail, 1e-6, 1e-5, "second part");
        AssertClose(state2, whole.State, 1e-6, 1e-5, "final state");
    }
}
