using ILGPU;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.LinearAttention;
using Xunit;

namespace Managed.Tests.Mechanisms;

/// <summary>
/// Bad calls of agent attention, induced set attention and the prefix scan throw an
/// <see cref="ArgumentException"/> naming the argument before anything is written (the output
/// keeps its sentinel; for the two-stage mechanisms, before stage 1 runs).
/// </summary>
public sealed class MechanismValidationTests
{
    private const float Sentinel = 12345f;
    private static readonly ArrayView<float> None = ArrayView<float>.Empty;

    internal static void AssertBad(string param, string message, float[] output, Action call)
    {
        Array.Fill(output, Sentinel);
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(param, e.ParamName);
        Assert.Contains(message, e.Message);
        Assert.All(output, x => Assert.Equal(Sentinel, x));
    }

    // ---------------------------------------------------------------- agent attention

    private static readonly AgentAttentionShape Agent = new(1, 2, 1, 5, 6, 3, 4, 2);

    public static TheoryData<string> AgentCases() => new()
    {
        "query", "key", "value", "agents", "output", "heads", "agents0", "scale", "layout",
        "position", "overlap", "views",
    };

    [Theory]
    [MemberData(nameof(AgentCases))]
    public void AgentAttentionRejects(string what)
    {
        var s = Agent;
        float[] q = new float[s.QueryLength], k = new float[s.KeyLength],
            v = new float[s.ValueLength], a = new float[s.AgentLength],
            o = new float[s.OutputLength];
        var host = ComputeDevice.Host;
        void Run(AgentAttentionShape shape, float[] q1, float[] k1, float[] v1, float[] a1,
            Span<float> o1, AttentionOptions options = default) =>
            AgentAttention.Forward(host, shape, q1, k1, v1, a1, o1, options);
        switch (what)
        {
            case "query":
                AssertBad("query", "batch 1 x heads 2 x seqQ 5 x headDim 4", o,
                    () => Run(s, new float[39], k, v, a, o));
                break;
            case "key":
                AssertBad("key", "batch 1 x kvHeads 1 x seqK 6 x headDim 4", o,
                    () => Run(s, q, new float[25], v, a, o));
                break;
            case "value":
                AssertBad("value", "seqK 6 x valueDim 2", o,
                    () => Run(s, q, k, new float[11], a, o));
                break;
            case "agents":
                AssertBad("agents", "batch 1 x heads 2 x agents 3 x headDim 4", o,
                    () => Run(s, q, k, v, new float[12], o));
                break;
            case "output":
                AssertBad("output", "seqQ 5 x valueDim 2", o,
                    () => Run(s, q, k, v, a, o.AsSpan(1)));
                break;
            case "heads":
                AssertBad("shape", "multiple of KvHeads", o,
                    () => Run(s with { KvHeads = 3 }, q, k, v, a, o));
                break;
            case "agents0":
                AssertBad("shape", "Agents must be positive", o,
                    () => Run(s with { Agents = 0 }, q, k, v, a, o));
                break;
            case "scale":
                AssertBad("options", "Scale", o,
                    () => Run(s, q, k, v, a, o, new() { Scale = float.NaN }));
                break;
            case "layout":
                AssertBad("options", "dense", o, () => Run(s, q, k, v, a, o,
                    new() { Layout = new AttentionLayout { KeyLengths = [3] } }));
                break;
            case "position":
                AssertBad("options", "QueryPosition", o,
                    () => Run(s, q, k, v, a, o, new() { QueryPosition = 2 }));
                break;
            case "overlap":
                var shared = new float[s.ValueLength + s.OutputLength];
                AssertBad("output", "overlap", o, () =>
                {
                    AgentAttention.Forward(host, s, q, k, shared.AsSpan(0, (int)s.ValueLength), a,
                        shared.AsSpan(2, (int)s.OutputLength));
                });
                break;
            default:
                AssertBad("device", "host", o, () => AgentAttention.Forward(host, s, None, None,
                    None, None, None, None));
                break;
        }
    }

    // ---------------------------------------------------------------- induced set attention

    private static readonly InducedSetAttentionShape Isab = new(1, 2, 1, 5, 6, 3, 4);

    public static TheoryData<string> IsabCases() => new()
    {
        "query", "key", "value", "inducing", "output", "inducing0", "tuning", "overlap", "views",
    };

    [Theory]
    [MemberData(nameof(IsabCases))]
    public void InducedSetAttentionRejects(string what)
    {
        var s = Isab;
        float[] q = new float[s.QueryLength], k = new float[s.KeyLength],
            v = new float[s.KeyLength], i = new float[s.InducingLength],
            o = new float[s.OutputLength];
        var host = ComputeDevice.Host;
        void Run(InducedSetAttentionShape shape, float[] q1, float[] k1, float[] v1,
            float[] i1, Span<float> o1, AttentionOptions options = default) =>
            InducedSetAttention.Forward(host, shape, q1, k1, v1, i1, o1, options);
        switch (what)
        {
            case "query":
                AssertBad("query", "seqQ 5 x headDim 4", o,
                    () => Run(s, new float[41], k, v, i, o));
                break;
            case "key":
                AssertBad("key", "kvHeads 1 x seqK 6 x headDim 4", o,
                    () => Run(s, q, new float[23], v, i, o));
                break;
            case "value":
                // A value dim other than the head dim: H could not be stage 2's keys.
                AssertBad("value", "valueDim = headDim", o,
                    () => Run(s, q, k, new float[12], i, o));
                break;
            case "inducing":
                AssertBad("inducing", "inducing 3 x headDim 4", o,
                    () => Run(s, q, k, v, new float[25], o));
                break;
            case "output":
                AssertBad("output", "seqQ 5 x headDim 4", o,
                    () => Run(s, q, k, v, i, o.AsSpan(0, 39)));
                break;
            case "inducing0":
                AssertBad("shape", "Inducing must be positive", o,
                    () => Run(s with { Inducing = 0 }, q, k, v, i, o));
                break;
            case "tuning":
                AssertBad("options", "KeyTile", o, () => Run(s, q, k, v, i, o,
                    new() { Tuning = new AttentionTuning { KeyTile = 7 } }));
                break;
            case "overlap":
                var both = new float[s.InducingLength + s.OutputLength];
                AssertBad("output", "overlap", o, () => InducedSetAttention.Forward(host, s, q, k,
                    v, both.AsSpan(0, (int)s.InducingLength), both.AsSpan(4, (int)s.OutputLength)));
                break;
            default:
                AssertBad("device", "host", o, () => InducedSetAttention.Forward(host, s,
                    None, None, None, None, None, None));
                break;
        }
    }

    // ---------------------------------------------------------------- prefix scan

    private static readonly PrefixScanShape Scan = new(1, 2, 1, 5, 4, 3);

    public static TheoryData<string> ScanCases() => new()
    {
        "query", "key", "value", "output", "initial", "final", "heads", "length0", "blocks",
        "threads", "scale", "overlap", "stateOverlap", "views",
    };

    [Theory]
    [MemberData(nameof(ScanCases))]
    public void PrefixScanRejects(string what)
    {
        var s = Scan;
        float[] q = new float[s.QueryLength], k = new float[s.KeyLength],
            v = new float[s.ValueLength], o = new float[s.OutputLength];
        var host = ComputeDevice.Host;
        void Run(PrefixScanShape shape, float[] q1, float[] k1, float[] v1, Span<float> o1,
            PrefixScanOptions options = default, float[]? initial = null, float[]? final = null) =>
            PrefixScanAttention.Forward(host, shape, q1, k1, v1, o1, initial, final, options);
        switch (what)
        {
            case "query":
                AssertBad("query", "batch 1 x heads 2 x headDim 4", o,
                    () => Run(s, new float[4], k, v, o));
                break;
            case "key":
                AssertBad("key", "kvHeads 1 x length 5 x headDim 4", o,
                    () => Run(s, q, new float[40], v, o));
                break;
            case "value":
                AssertBad("value", "length 5 x valueDim 3", o,
                    () => Run(s, q, k, new float[14], o));
                break;
            case "output":
                AssertBad("output", "heads 2 x length 5 x valueDim 3", o,
                    () => Run(s, q, k, v, o.AsSpan(0, 15)));
                break;
            case "initial":
                AssertBad("initialState", "(2 + valueDim 3)", o,
                    () => Run(s, q, k, v, o, initial: new float[5]));
                break;
            case "final":
                AssertBad("finalState", "(2 + valueDim 3)", o,
                    () => Run(s, q, k, v, o, final: new float[11]));
                break;
            case "heads":
                AssertBad("shape", "multiple of KvHeads", o,
                    () => Run(s with { KvHeads = 2, Heads = 3 }, q, k, v, o));
                break;
            case "length0":
                AssertBad("shape", "Length must be positive", o,
                    () => Run(s with { Length = 0 }, q, [], [], o));
                break;
            case "blocks":
                AssertBad("options", "HostBlocks", o,
                    () => Run(s, q, k, v, o, new() { HostBlocks = 0 }));
                break;
            case "threads":
                AssertBad("options", "MaxDegreeOfParallelism", o,
                    () => Run(s, q, k, v, o, new() { MaxDegreeOfParallelism = -1 }));
                break;
            case "scale":
                AssertBad("options", "Scale", o,
                    () => Run(s, q, k, v, o, new() { Scale = float.PositiveInfinity }));
                break;
            case "overlap":
                var kv = new float[s.KeyLength + s.OutputLength];
                AssertBad("output", "overlap", o, () => PrefixScanAttention.Forward(host, s, q,
                    kv.AsSpan(0, (int)s.KeyLength), v, kv.AsSpan(1, (int)s.OutputLength)));
                break;
            case "stateOverlap":
                // The final state may be the initial state itself, not a shifted copy of it.
                var states = new float[s.StateLength + 1];
                AssertBad("finalState", "initialState", o, () => PrefixScanAttention.Forward(host,
                    s, q, k, v, o, states.AsSpan(0, (int)s.StateLength),
                    states.AsSpan(1, (int)s.StateLength)));
                break;
            default:
                AssertBad("device", "host", o, () => PrefixScanAttention.Forward(host, s,
                    None, None, None, None, None, None));
                break;
        }
    }

    [Fact]
    public void StepRejects()
    {
        float[] q = new float[4], k = new float[4], v = new float[3], state = new float[5],
            o = new float[3];
        AssertBad("key", "headDim 4", o, () => PrefixScanAttention.Step(q, new float[3], v,
            state, o));
        AssertBad("query", "empty", o, () => PrefixScanAttention.Step([], [], v, state, o));
        AssertBad("state", "2 + valueDim 3", o, () => PrefixScanAttention.Step(q, k, v,
            new float[4], o));
        AssertBad("output", "valueDim 3", o, () => PrefixScanAttention.Step(q, k, v, state,
            o.AsSpan(0, 2)));
        AssertBad("options", "Scale", o, () => PrefixScanAttention.Step(q, k, v, state, o,
            new() { Scale = float.NaN }));
        var e = Assert.Throws<ArgumentException>(
            () => PrefixScanAttention.InitializeState(new float[7], 3));
        Assert.Equal("state", e.ParamName);
        e = Assert.Throws<ArgumentException>(
            () => PrefixScanAttention.InitializeState(new float[7], 0));
        Assert.Equal("valueDim", e.ParamName);
    }
}
