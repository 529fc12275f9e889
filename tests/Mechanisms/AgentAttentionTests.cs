using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.Mechanisms;

/// <summary>
/// Agent attention on the host: equal to a dense two-stage fp64 reference (V_A = softmax(A K^T)
/// V, then O = softmax(Q A^T) V_A, both written out in double), every output a convex
/// combination of V rows (a column of ones stays 1; every column within its V column's range),
/// and one agent gives every query that agent's row. The checks are static so the ILGPU CPU
/// tests run them on the device.
/// </summary>
public sealed class AgentAttentionTests
{
    /// <summary>Small cases: equal heads, GQA with a non-default scale, many keys, one batch of
    /// two sequences.</summary>
    public static TheoryData<int> Cases() => new() { 0, 1, 2, 3 };

    internal static (AgentAttentionShape Shape, float? Scale) Case(int i) => i switch
    {
        0 => (new(1, 2, 2, 17, 23, 4, 8, 8), null),
        1 => (new(2, 4, 2, 33, 70, 5, 16, 12), 0.7f),
        2 => (new(1, 1, 1, 5, 300, 7, 32, 32), null),
        _ => (new(2, 2, 1, 9, 11, 3, 4, 6), 1.3f),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTwoStageReference(int i)
    {
        var (shape, scale) = Case(i);
        AssertMatchesTwoStageReference(ComputeDevice.Host, shape, scale, 100 + i);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void OutputsAreConvexCombinationsOfValues(int i) =>
        AssertConvexCombination(ComputeDevice.Host, Case(i).Shape, 110 + i);

    [Fact]
    public void OneAgentGivesItsRowToEveryQuery() =>
        AssertOneAgentBroadcasts(ComputeDevice.Host, new(2, 2, 1, 13, 29, 1, 8, 5));

    /// <summary>Random inputs; the output against both stages in double.</summary>
    internal static void AssertMatchesTwoStageReference(ComputeDevice device,
        AgentAttentionShape s, float? scale, int seed)
    {
        var (q, k, v, a) = Inputs(s, seed);
        var output = new float[s.OutputLength];
        AgentAttention.Forward(device, s, q, k, v, a, output,
            new AttentionOptions { Scale = scale });
        AssertClose(output, Reference(s, q, k, v, a, scale), 2e-5, 1e-4, $"{s} output");
    }

    /// <summary>V_A = softmax(A K^T scale) V and O = softmax(Q A^T scale) V_A in double.</summary>
    internal static double[] Reference(AgentAttentionShape s, float[] q, float[] k, float[] v,
        float[] a, float? scale)
    {
        double sc = scale ?? 1.0 / Math.Sqrt(s.HeadDim);
        var agentValues = Attention(s.Batch, s.Heads, s.KvHeads, s.Agents, s.SeqK, s.HeadDim,
            s.ValueDim, ToDouble(a), ToDouble(k), ToDouble(v), sc);
        return Attention(s.Batch, s.Heads, s.Heads, s.SeqQ, s.Agents, s.HeadDim, s.ValueDim,
            ToDouble(q), ToDouble(a), agentValues, sc);
    }

    internal static (float[] Q, float[] K, float[] V, float[] A) Inputs(AgentAttentionShape s,
        int seed) =>
        (Uniform(seed, s.QueryLength, 2f), Uniform(seed + 1, s.KeyLength, 2f),
         Uniform(seed + 2, s.ValueLength), Uniform(seed + 3, s.AgentLength, 2f));

    /// <summary>
    /// Both weight matrices are row-stochastic, so O = W2 W1 V with W2 W1 row-stochastic: a
    /// column of ones in V stays 1, and every output lies within its column's range over the
    /// KV head's rows. Peaked weights (inputs scaled by 3) so the range is not trivial.
    /// </summary>
    internal static void AssertConvexCombination(ComputeDevice device, AgentAttentionShape s,
        int seed)
    {
        var q = Uniform(seed, s.QueryLength, 3f);
        var k = Uniform(seed + 1, s.KeyLength, 3f);
        var v = Uniform(seed + 2, s.ValueLength, 5f);
        var a = Uniform(seed + 3, s.AgentLength, 3f);
        int dv = s.ValueDim, n = s.SeqK, group = s.Heads / s.KvHeads;
        for (long row = 0; row < (long)s.Batch * s.KvHeads * n; row++) v[row * dv] = 1f;
        var output = new float[s.OutputLength];
        AgentAttention.Forward(device, s, q, k, v, a, output);
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long kv = (long)b * s.KvHeads + h / group, bh = (long)b * s.Heads + h;
            for (int c = 0; c < dv; c++)
            {
                float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                for (int j = 0; j < n; j++)
                {
                    lo = MathF.Min(lo, v[(kv * n + j) * dv + c]);
                    hi = MathF.Max(hi, v[(kv * n + j) * dv + c]);
                }
                for (int i = 0; i < s.SeqQ; i++)
                {
                    float o = output[(bh * s.SeqQ + i) * dv + c];
                    if (c == 0) Assert.InRange(o, 1f - 1e-5f, 1f + 1e-5f);
                    Assert.InRange(o, lo - 1e-5f, hi + 1e-5f);
                }
            }
        }
    }

    /// <summary>With one agent, stage 2's softmax is over one key: every query of a head gets
    /// V_A's single row, softmax(a K^T scale) V, whatever the query.</summary>
    internal static void AssertOneAgentBroadcasts(ComputeDevice device, AgentAttentionShape s)
    {
        var (q, k, v, a) = Inputs(s, 120);
        var output = new float[s.OutputLength];
        AgentAttention.Forward(device, s, q, k, v, a, output);
        var agentValues = Attention(s.Batch, s.Heads, s.KvHeads, 1, s.SeqK, s.HeadDim,
            s.ValueDim, ToDouble(a), ToDouble(k), ToDouble(v), 1.0 / Math.Sqrt(s.HeadDim));
        var expected = new double[output.Length];
        for (int bh = 0; bh < s.Batch * s.Heads; bh++)
        for (int i = 0; i < s.SeqQ; i++)
            Array.Copy(agentValues, (long)bh * s.ValueDim, expected,
                ((long)bh * s.SeqQ + i) * s.ValueDim, s.ValueDim);
        AssertClose(output, expected, 1e-5, 1e-4, $"{s} broadcast");
    }
}
