using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.Mechanisms;

/// <summary>
/// Induced set attention on the host: equal to its two exact attentions composed by the fp64
/// reference (H = Attention(I, K, V), O = Attention(Q, H, H)); permuting the inputs (K and V
/// rows together) leaves O unchanged; permuting the queries permutes O's rows the same way.
/// The checks are static so the ILGPU CPU tests run them on the device.
/// </summary>
public sealed class InducedSetAttentionTests
{
    /// <summary>Equal heads, GQA with a scale, many inputs, a single inducing point.</summary>
    public static TheoryData<int> Cases() => new() { 0, 1, 2, 3 };

    internal static (InducedSetAttentionShape Shape, float? Scale) Case(int i) => i switch
    {
        0 => (new(1, 2, 2, 19, 19, 4, 8), null),
        1 => (new(2, 4, 2, 31, 45, 6, 16), 0.6f),
        2 => (new(1, 1, 1, 7, 260, 9, 32), null),
        _ => (new(2, 2, 1, 11, 13, 1, 4), 1.5f),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesComposedReference(int i)
    {
        var (shape, scale) = Case(i);
        AssertMatchesReference(ComputeDevice.Host, shape, scale, 200 + i);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void IsPermutationEquivariant(int i) =>
        AssertPermutationEquivariant(ComputeDevice.Host, Case(i).Shape, 210 + i);

    internal static (float[] Q, float[] K, float[] V, float[] I) Inputs(
        InducedSetAttentionShape s, int seed) =>
        (Uniform(seed, s.QueryLength, 2f), Uniform(seed + 1, s.KeyLength, 2f),
         Uniform(seed + 2, s.KeyLength), Uniform(seed + 3, s.InducingLength, 2f));

    /// <summary>The output against ReferenceAttention twice: stage 1 in double, its H rounded
    /// to float as stage 2's keys and values.</summary>
    internal static void AssertMatchesReference(ComputeDevice device, InducedSetAttentionShape s,
        float? scale, int seed)
    {
        var (q, k, v, inducing) = Inputs(s, seed);
        var options = new AttentionOptions { Scale = scale };
        var output = new float[s.OutputLength];
        InducedSetAttention.Forward(device, s, q, k, v, inducing, output, options);
        AssertClose(output, Reference(s, q, k, v, inducing, options), 2e-5, 1e-4,
            $"{s} output");
    }

    internal static double[] Reference(InducedSetAttentionShape s, float[] q, float[] k,
        float[] v, float[] inducing, AttentionOptions options)
    {
        var (h, _) = ReferenceAttention.Forward(s.InducingStage, inducing, k, v, default(NoScore),
            default(NoMask), options);
        var hf = Array.ConvertAll(h, x => (float)x);
        var (o, _) = ReferenceAttention.Forward(s.QueryStage, q, hf, hf, default(NoScore),
            default(NoMask), options);
        return o;
    }

    /// <summary>H is a sum over the inputs, so the order of the (K, V) rows does not matter;
    /// each output row depends on its own query only.</summary>
    internal static void AssertPermutationEquivariant(ComputeDevice device,
        InducedSetAttentionShape s, int seed)
    {
        var (q, k, v, inducing) = Inputs(s, seed);
        int d = s.HeadDim, kvItems = s.Batch * s.KvHeads, qItems = s.Batch * s.Heads;
        var output = new float[s.OutputLength];
        InducedSetAttention.Forward(device, s, q, k, v, inducing, output);

        var inputs = Permutation(seed, s.SeqK);
        var permutedInputs = new float[s.OutputLength];
        InducedSetAttention.Forward(device, s, q, Permute(k, kvItems, s.SeqK, d, inputs),
            Permute(v, kvItems, s.SeqK, d, inputs), inducing, permutedInputs);
        AssertClose(permutedInputs, output, 1e-5, 1e-5, $"{s} inputs permuted");

        var queries = Permutation(seed + 1, s.SeqQ);
        var permutedQueries = new float[s.OutputLength];
        InducedSetAttention.Forward(device, s, Permute(q, qItems, s.SeqQ, d, queries), k, v,
            inducing, permutedQueries);
        AssertClose(permutedQueries, Permute(output, qItems, s.SeqQ, d, queries), 1e-5, 1e-5,
            $"{s} queries permuted");
    }
}
