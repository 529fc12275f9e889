using FsCheck;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tensors;
using Xunit;
using Managed.Tests.Support;

namespace Managed.Tests.Tensors;

public class TensorAttentionTests
{
    private static float[] RandomData(Random random, long length)
    {
        var data = new float[length];
        for (int i = 0; i < data.Length; i++)
            data[i] = (float)(random.NextDouble() * 2 - 1);
        return data;
    }

    // TensorAttention.Forward must be FlashAttention.Forward on the same spans: bit-identical.
    private static bool MatchesSpanApi<TScore, TMask>(
        AttentionShape s, int seed, TScore score, TMask mask, AttentionOptions options)
        where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
    {
        var random = new Random(seed);
        float[] q = RandomData(random, s.QueryLength);   // (batch, heads, seqQ, headDim)
        float[] k = RandomData(random, s.KeyLength);     // (batch, kvHeads, seqK, headDim)
        float[] v = RandomData(random, s.ValueLength);   // (batch, kvHeads, seqK, valueDim)
        var expected = new float[s.OutputLength];        // (batch, heads, seqQ, valueDim)
        var expectedLse = new float[s.LogSumExpLength];  // (batch, heads, seqQ)
        HostAttention.Forward(s, q, k, v, expected, expectedLse, score, mask, options);

        using var qt = NdTensor.FromArray(q, s.Batch, s.Heads, s.SeqQ, s.HeadDim);
        using var kt = NdTensor.FromArray(k, s.Batch, s.KvHeads, s.SeqK, s.HeadDim);
        using var vt = NdTensor.FromArray(v, s.Batch, s.KvHeads, s.SeqK, s.ValueDim);
        using var output = NdTensor.Allocate(s.Batch, s.Heads, s.SeqQ, s.ValueDim);
        using var lse = NdTensor.Allocate(s.Batch, s.Heads, s.SeqQ);
        TensorAttention.Forward(qt, kt, vt, output, lse, score, mask, default(SoftmaxNormalizer),
            options);

        return output.AsSpan().SequenceEqual(expected) && lse.AsSpan().SequenceEqual(expectedLse);
    }

    [Fact]
    public void CausalGqaEqualsFlashAttentionForward() =>
        Assert.True(MatchesSpanApi(new AttentionShape(2, 4, 2, 5, 37, 16, 8), 1,
            default(NoScore), default(CausalMask), default));

    [Fact]
    public void AlibiTopLeftEqualsFlashAttentionForward() =>
        Assert.True(MatchesSpanApi(new AttentionShape(1, 3, 1, 33, 20, 32, 32), 2,
            new AlibiScore(3), default(CausalMask),
            new AttentionOptions { Alignment = QueryAlignment.TopLeft, Scale = 0.3f }));

    [Property(MaxTest = 25)]
    public bool AnyShapeEqualsFlashAttentionForward(
        PositiveInt batch, PositiveInt kvHeads, PositiveInt group, PositiveInt seqQ,
        PositiveInt seqK, PositiveInt dims, int seed, bool causal)
    {
        int[] headDims = [1, 8, 16, 33];
        var s = new AttentionShape(batch.Get % 2 + 1, (kvHeads.Get % 2 + 1) * (group.Get % 3 + 1),
            kvHeads.Get % 2 + 1, seqQ.Get % 40 + 1, seqK.Get % 70 + 1,
            headDims[dims.Get % 4], headDims[dims.Get / 4 % 4]);
        return causal
            ? MatchesSpanApi(s, seed, default(NoScore), default(CausalMask), default)
            : MatchesSpanApi(s, seed, default(NoScore), default(NoMask), default);
    }

    [Fact]
    public void NullLogSumExpAndViewsWork()
    {
        var s = AttentionShape.Self(1, 2, 9, 16);
        var random = new Random(3);
        // (2 stacked, batch, heads, seq, headDim): q and k are slices of one buffer.
        using var qk = NdTensor.FromArray(RandomData(random, 2 * s.QueryLength), 2, 1, 2, 9, 16);
        float[] v = RandomData(random, s.ValueLength);
        var expected = new float[s.OutputLength];
        HostAttention.Forward(s, qk.Slice(0).AsSpan(), qk.Slice(1).AsSpan(), v, expected,
            default, default(NoScore), default(NoMask));

        using var vt = NdTensor.FromArray(v, 1, 2, 9, 16);
        using var output = NdTensor.Allocate(1, 2, 9, 16);
        TensorAttention.Forward(qk.Slice(0), qk.Slice(1), vt, output, null,
            default(NoScore), default(NoMask), default(SoftmaxNormalizer));

        Assert.Equal(expected, output.AsSpan().ToArray());
    }

    public static TheoryData<string, int[], int[], int[], int[], int[]?> BadShapes => new()
    {
        // name,        q,              k,              v,              output,         lse
        { "q",         [1, 2, 4],      [1, 2, 6, 8],   [1, 2, 6, 8],   [1, 2, 4, 8],   null },
        { "k",         [1, 2, 4, 8],   [2, 2, 6, 8],   [1, 2, 6, 8],   [1, 2, 4, 8],   null },
        { "k",         [1, 2, 4, 8],   [1, 2, 6, 4],   [1, 2, 6, 8],   [1, 2, 4, 8],   null },
        { "k",         [1, 4, 4, 8],   [1, 3, 6, 8],   [1, 3, 6, 8],   [1, 4, 4, 8],   null },
        { "v",         [1, 2, 4, 8],   [1, 2, 6, 8],   [1, 2, 5, 8],   [1, 2, 4, 8],   null },
        { "v",         [1, 2, 4, 8],   [1, 2, 6, 8],   [1, 1, 6, 8],   [1, 2, 4, 8],   null },
        { "output",    [1, 2, 4, 8],   [1, 2, 6, 8],   [1, 2, 6, 8],   [1, 2, 4, 7],   null },
        { "output",    [1, 2, 4, 8],   [1, 2, 6, 8],   [1, 2, 6, 8],   [1, 2, 3, 8],   null },
        { "logSumExp", [1, 2, 4, 8],   [1, 2, 6, 8],   [1, 2, 6, 8],   [1, 2, 4, 8],   [1, 2, 5] },
        { "logSumExp", [1, 2, 4, 8], [1, 2, 6, 8], [1, 2, 6, 8], [1, 2, 4, 8], [1, 2, 4, 1] },
        { "q",         [1, 2, 0, 8],   [1, 2, 6, 8],   [1, 2, 6, 8],   [1, 2, 0, 8],   null },
    };

    [Theory]
    [MemberData(nameof(BadShapes))]
    public void BadShapeThrowsNamingTheTensorBeforeWriting(
        string name, int[] q, int[] k, int[] v, int[] output, int[]? lse)
    {
        using var qt = NdTensor.Allocate(q);
        using var kt = NdTensor.Allocate(k);
        using var vt = NdTensor.Allocate(v);
        using var ot = NdTensor.Allocate(output);
        ot.AsSpan().Fill(42f);
        using var lt = lse is null ? null : NdTensor.Allocate(lse);

        var e = Assert.Throws<ArgumentException>(() => TensorAttention.Forward(
            qt, kt, vt, ot, lt, default(NoScore), default(NoMask),
            default(SoftmaxNormalizer)));

        Assert.Equal(name, e.ParamName);
        Assert.StartsWith(name + " ", e.Message);
        Assert.All(ot.AsSpan().ToArray(), x => Assert.Equal(42f, x));
    }

    [Fact]
    public void OutputAliasingAnInputThrows()
    {
        using var q = NdTensor.Allocate(1, 1, 4, 8);
        using var k = NdTensor.Allocate(1, 1, 4, 8);
        var e = Assert.Throws<ArgumentException>(() => TensorAttention.Forward(
            q, k, k, q, null, default(NoScore), default(NoMask),
            default(SoftmaxNormalizer)));
        Assert.Equal("output", e.ParamName);
    }

    [Fact]
    public void NullOrDisposedTensorThrows()
    {
        using var q = NdTensor.Allocate(1, 1, 4, 8);
        using var output = NdTensor.Allocate(1, 1, 4, 8);
        var k = NdTensor.Allocate(1, 1, 4, 8);
        k.Dispose();

        Assert.Throws<ObjectDisposedException>(() => TensorAttention.Forward(
            q, k, q, output, null, default(NoScore), default(NoMask),
            default(SoftmaxNormalizer)));
        var e = Assert.Throws<ArgumentNullException>(() => TensorAttention.Forward(
            q, null!, q, output, null, default(NoScore), default(NoMask),
            default(SoftmaxNormalizer)));
        Assert.Equal("k", e.ParamName);
    }
}
