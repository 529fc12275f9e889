using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Tests.Support;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>
/// Test-only score modifier: the score unchanged, except <paramref name="value"/> (+infinity or
/// NaN) for key <paramref name="key"/> of every row.
/// </summary>
public readonly struct NonFiniteAtKeyScore(int key, float value) : IScoreModifier
{
    private readonly int _key = key;
    private readonly float _value = value;

    public float Apply(float score, int batch, int head, int q, int k) =>
        k == _key ? _value : score;

    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0)
    {
        int j = _key - k0;
        if ((uint)j < (uint)scores.Length) scores[j] = _value;
    }
}

/// <summary>
/// The rule for non-finite modified scores (README, Contract). A row whose mask allows no key
/// gives zeros and a log-sum-exp of -infinity; -infinity means exactly that (no weight). A row
/// that attends to a key whose modified score is NaN, or +infinity under softmax, gives NaN
/// output and NaN log-sum-exp: exp(+inf - +inf) is NaN, and a NaN weight sum must not read as
/// an empty row. Clipped softmax takes its weights from that NaN log-sum-exp: NaN as well.
/// Elementwise normalizers apply their weight to +infinity as written: sigmoid gives weight 1
/// (a finite row, as the reference), softplus an infinite weight (NaN output, log-sum-exp
/// +infinity). Rows that do not attend to the key are unaffected. The fp64 reference obeys the
/// same rule. Shape: causal, bottom-right, seqQ = seqK + 10, so rows 0-9 attend to nothing and
/// row i &gt;= 10 attends to keys 0..i - 10; two key tiles on the host (70 keys).
/// </summary>
public static class NonFiniteScoreCheck
{
    /// <summary>The key whose modified score is non-finite.</summary>
    public const int Key = 21;

    /// <summary>Runs the case on <paramref name="backend"/> (and the reference) and checks
    /// every row.</summary>
    public static void Run<TNorm>(TestDevice backend, int seqK, int headDim, float value,
        TNorm norm)
        where TNorm : struct, INormalizer
    {
        int seqQ = seqK + 10, masked = seqQ - seqK;
        var shape = new AttentionShape(1, 1, 1, seqQ, seqK, headDim, 3);
        var random = new Random(7);
        float[] Fill(long n) =>
            Enumerable.Range(0, (int)n).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        float[] q = Fill(shape.QueryLength), k = Fill(shape.KeyLength), v = Fill(shape.ValueLength);
        var score = new NonFiniteAtKeyScore(Key, value);
        var (output, lse) = AttentionRun.Allocate(shape);
        backend.Attention(shape, q, k, v, output, lse, score, default(CausalMask), norm);
        var (refOut, refLse) =
            ReferenceAttention.Forward(shape, q, k, v, score, default(CausalMask), norm);
        // The row's fate: sigmoid maps +infinity to weight 1, so only its NaN case is NaN.
        bool nanRow = float.IsNaN(value) || typeof(TNorm) != typeof(SigmoidNormalizer);
        bool infLse = typeof(TNorm) == typeof(SoftplusNormalizer) && !float.IsNaN(value);
        string context =
            $"{typeof(TNorm).Name}, score {value} at key {Key}, seqK {seqK}, d {headDim}";
        for (int i = 0; i < seqQ; i++)
        {
            int pos = i - masked;
            var row = output.AsSpan(i * 3, 3);
            var refRow = refOut.AsSpan(i * 3, 3);
            string at = $"row {i} (position {pos}), {context}";
            if (pos < 0)
            {
                Assert.True(row.ToArray().All(x => x == 0f), $"{at}: output {Show(row)}");
                Assert.True(float.IsNegativeInfinity(lse[i]), $"{at}: log-sum-exp {lse[i]}");
                Assert.True(double.IsNegativeInfinity(refLse[i]), $"{at}: ref lse {refLse[i]}");
            }
            else if (pos >= Key && nanRow)
            {
                Assert.True(row.ToArray().All(float.IsNaN), $"{at}: output {Show(row)}");
                Assert.True(refRow.ToArray().All(double.IsNaN),
                    $"{at}: reference output {string.Join(", ", refRow.ToArray())}");
                if (infLse)
                {
                    Assert.True(float.IsPositiveInfinity(lse[i]), $"{at}: log-sum-exp {lse[i]}");
                    Assert.True(double.IsPositiveInfinity(refLse[i]), $"{at}: ref lse {refLse[i]}");
                }
                else
                {
                    Assert.True(float.IsNaN(lse[i]), $"{at}: log-sum-exp {lse[i]}, expected NaN");
                    Assert.True(double.IsNaN(refLse[i]), $"{at}: ref lse {refLse[i]}");
                }
            }
            else
            {
                Tolerance.Kernel.AssertClose(row, refRow, $"output row {i}", context);
                Tolerance.Kernel.AssertClose(lse.AsSpan(i, 1), refLse.AsSpan(i, 1),
                    $"log-sum-exp row {i}", context);
            }
        }
    }

    /// <summary>The normalizers' parameters.</summary>
    internal static readonly ClippedSoftmaxNormalizer Clipped = new(1.1f, -0.1f);
    internal static readonly SoftplusNormalizer Softplus = new(16, 2f);

    private static string Show(ReadOnlySpan<float> row) => string.Join(", ", row.ToArray());

    /// <summary>+infinity and NaN.</summary>
    public static TheoryData<float> Values => new() { float.PositiveInfinity, float.NaN };
}

/// <summary><see cref="NonFiniteScoreCheck"/> on the host SIMD kernel.</summary>
[Collection(HostBackendCollection.Name)]
public sealed class HostNonFiniteScoreTests(HostBackendFixture fixture)
{
    [Theory]
    [MemberData(nameof(NonFiniteScoreCheck.Values), MemberType = typeof(NonFiniteScoreCheck))]
    public void Softmax(float value) =>
        NonFiniteScoreCheck.Run(fixture.Backend, 70, 8, value, default(SoftmaxNormalizer));

    [Theory]
    [MemberData(nameof(NonFiniteScoreCheck.Values), MemberType = typeof(NonFiniteScoreCheck))]
    public void Sigmoid(float value) =>
        NonFiniteScoreCheck.Run(fixture.Backend, 70, 8, value, new SigmoidNormalizer(-1f));

    [Theory]
    [MemberData(nameof(NonFiniteScoreCheck.Values), MemberType = typeof(NonFiniteScoreCheck))]
    public void Softplus(float value) =>
        NonFiniteScoreCheck.Run(fixture.Backend, 70, 8, value, NonFiniteScoreCheck.Softplus);

    [Theory]
    [MemberData(nameof(NonFiniteScoreCheck.Values), MemberType = typeof(NonFiniteScoreCheck))]
    public void ClippedSoftmax(float value) =>
        NonFiniteScoreCheck.Run(fixture.Backend, 70, 8, value, NonFiniteScoreCheck.Clipped);
}

/// <summary>
/// <see cref="NonFiniteScoreCheck"/> on ILGPU's CPU accelerator: head dim 8 runs the
/// register-tiled kernel, 160 the general one.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class IlgpuCpuNonFiniteScoreTests(IlgpuCpuFixture fixture)
{
    [Theory]
    [InlineData(8, float.PositiveInfinity)]
    [InlineData(8, float.NaN)]
    [InlineData(160, float.PositiveInfinity)]
    [InlineData(160, float.NaN)]
    public void Softmax(int headDim, float value) =>
        NonFiniteScoreCheck.Run(fixture.Backend, 30, headDim, value, default(SoftmaxNormalizer));

    [Theory]
    [InlineData(8, float.PositiveInfinity)]
    [InlineData(160, float.NaN)]
    public void Sigmoid(int headDim, float value) =>
        NonFiniteScoreCheck.Run(fixture.Backend, 30, headDim, value, new SigmoidNormalizer(-1f));

    [Theory]
    [InlineData(8, float.PositiveInfinity)]
    [InlineData(160, float.NaN)]
    public void Softplus(int headDim, float value) =>
        NonFiniteScoreCheck.Run(fixture.Backend, 30, headDim, value, NonFiniteScoreCheck.Softplus);

    [Theory]
    [InlineData(8, float.PositiveInfinity)]
    [InlineData(160, float.PositiveInfinity)]
    public void ClippedSoftmax(int headDim, float value) =>
        NonFiniteScoreCheck.Run(fixture.Backend, 30, headDim, value, NonFiniteScoreCheck.Clipped);
}
