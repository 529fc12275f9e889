using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>
/// AttentionMerge on its own: lse = log(e^a + e^b), O = e^(a - lse) O_A + e^(b - lse) O_B,
/// checked by hand and against the same formula in double. (The kernel-level property, merge
/// of a split equals the whole, is in <see cref="AttentionPropertiesBase"/>.)
/// </summary>
public sealed class AttentionMergeTests
{
    [Fact]
    public void EqualWeightsAverage()
    {
        var output = new float[2];
        var lse = new float[1];
        AttentionMerge.Merge(2, [1f, 10f], [0f], [3f, 20f], [0f], output, lse);
        Assert.Equal([2f, 15f], output);
        Assert.Equal(MathF.Log(2f), lse[0], 6);
    }

    [Fact]
    public void EmptySideContributesNothing()
    {
        var output = new float[4];
        var lse = new float[2];
        float inf = float.NegativeInfinity;
        // Row 0: A saw no key. Row 1: neither side saw a key.
        AttentionMerge.Merge(2, [9f, 9f, 0f, 0f], [inf, inf], [1f, -2f, 0f, 0f], [0.75f, inf], output, lse);
        Assert.Equal([1f, -2f, 0f, 0f], output);
        Assert.Equal(0.75f, lse[0]);
        Assert.Equal(inf, lse[1]);
    }

    /// <summary>
    /// lse 1e4 and 1e4 - 1 (both exact in fp32): e^1e4 overflows, the max-shifted form does
    /// not. Weights 1/(1 + e^-1) and e^-1/(1 + e^-1); lse = 1e4 + log(1 + e^-1), which fp32
    /// holds to its ulp at 1e4 (~1e-3).
    /// </summary>
    [Fact]
    public void LargeLogSumExpsDoNotOverflow()
    {
        var output = new float[1];
        var lse = new float[1];
        AttentionMerge.Merge(1, [1f], [1e4f], [-1f], [1e4f - 1f], output, lse);
        double wb = Math.Exp(-1) / (1 + Math.Exp(-1));
        Assert.Equal(1 - 2 * wb, output[0], 5);
        Assert.Equal(1e4 + Math.Log(1 + Math.Exp(-1)), lse[0], 2);
    }

    /// <summary>Random rows, log-sum-exps in [-50, 50] or -infinity, any value dim.</summary>
    [Property(MaxTest = 200)]
    public Property MatchesFormulaAndMayAliasEitherInput() =>
        Prop.ForAll(Gen.Choose(1, 20).ToArbitrary(), Gen.Choose(1, 70).ToArbitrary(), AttentionGen.Seed.ToArbitrary(),
            (rows, valueDim, seed) =>
            {
                var random = new Random(seed);
                float[] Lse() => Enumerable.Range(0, rows).Select(_ => random.Next(6) == 0
                    ? float.NegativeInfinity : (float)(100 * random.NextDouble() - 50)).ToArray();
                var oA = AttentionCase.Uniform(seed, 10, (long)rows * valueDim);
                var oB = AttentionCase.Uniform(seed, 11, (long)rows * valueDim);
                var lA = Lse();
                var lB = Lse();
                var expected = new double[oA.Length];
                var expectedLse = new double[rows];
                for (int r = 0; r < rows; r++)
                {
                    double m = Math.Max(lA[r], lB[r]);
                    if (double.IsNegativeInfinity(m)) { expectedLse[r] = m; continue; }
                    double wa = Math.Exp(lA[r] - m), wb = Math.Exp(lB[r] - m), sum = wa + wb;
                    expectedLse[r] = m + Math.Log(sum);
                    for (int c = 0; c < valueDim; c++)
                        expected[r * valueDim + c] = (wa * oA[r * valueDim + c] + wb * oB[r * valueDim + c]) / sum;
                }
                var context = $"rows={rows} valueDim={valueDim} seed={seed}";
                var output = new float[oA.Length];
                var lse = new float[rows];
                AttentionMerge.Merge(valueDim, oA, lA, oB, lB, output, lse);
                Tolerance.Kernel.AssertClose(output, expected, "output", context);
                Tolerance.Kernel.AssertClose(lse, expectedLse, "log-sum-exp", context);
                // In place: the result overwrites A.
                AttentionMerge.Merge(valueDim, oA, lA, oB, lB, oA, lA);
                Assert.Equal(output, oA);
                Assert.Equal(lse, lA);
            });

    [Fact]
    public void BadLengthsThrowNamingTheArgument()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            AttentionMerge.Merge(2, new float[4], new float[2], new float[3], new float[2], new float[4], new float[2]));
        Assert.Equal("outputB", e.ParamName);
        Assert.Contains("3", e.Message);
        e = Assert.Throws<ArgumentException>(() =>
            AttentionMerge.Merge(0, new float[0], new float[0], new float[0], new float[0], new float[0], new float[0]));
        Assert.Equal("valueDim", e.ParamName);
    }
}
