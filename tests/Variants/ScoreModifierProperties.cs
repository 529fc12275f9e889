using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Xunit.Sdk;

namespace Managed.Tests.Variants;

/// <summary>
/// The CPU kernel calls ApplyRow, the reference and the GPU kernels call Apply: the contract
/// (IScoreModifier.ApplyRow's doc) is scores[j] = Apply(scores[j], b, h, q, k0 + j).
/// </summary>
public sealed class ScoreModifierProperties
{
    /// <summary>A row of scores and where it sits: rows of 0..70 keys, so SIMD tails of every length.</summary>
    public sealed record Row(int Batch, int Head, int Q, int K0, int Length, int Seed)
    {
        /// <summary>Scores uniform in [-60, 60): beyond the softcap of 30 on both sides.</summary>
        public float[] Scores()
        {
            var random = new Random(Seed);
            return Enumerable.Range(0, Length).Select(_ => (float)(120 * random.NextDouble() - 60)).ToArray();
        }

        /// <inheritdoc/>
        public override string ToString() => $"b={Batch} h={Head} q={Q} k0={K0} n={Length} seed={Seed}";
    }

    private static Arbitrary<Row> Rows { get; } =
        (from batch in Gen.Choose(0, 3)
         from head in Gen.Choose(0, 15)
         from q in Gen.Choose(-200, 400)
         from k0 in Gen.Choose(0, 400)
         from length in Gen.Frequency((1, Gen.Elements(0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 64)), (2, Gen.Choose(0, 70)))
         from seed in AttentionGen.Seed
         select new Row(batch, head, q, k0, length, seed))
        .ToArbitrary();

    [Property(MaxTest = 100)]
    public Property NoScoreRowEqualsApply() =>
        Prop.ForAll(Rows, r => AssertRowEqualsApply(default(NoScore), r, $"{r}"));

    /// <summary>
    /// ALiBi for 1..16 heads: power-of-two head counts have exact slopes (2^-k), others do not,
    /// so a row form that accumulates the bias (bias += 8 * slope) instead of computing
    /// slope * (k - q) per key drifts from Apply.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property AlibiRowEqualsApply() =>
        Prop.ForAll(Rows, Gen.Choose(1, 16).ToArbitrary(), (r, heads) =>
            AssertRowEqualsApply(new AlibiScore(heads), r with { Head = r.Head % heads }, $"heads={heads} {r}"));

    [Property(MaxTest = 200)]
    public Property SoftcapRowEqualsApply() =>
        Prop.ForAll(Rows, Gen.Elements(0.5f, 1f, 5f, 20f, 30f, 50f, 1000f).ToArbitrary(), (r, cap) =>
            AssertRowEqualsApply(new SoftcapScore(cap), r, $"cap={cap} {r}"));

    private static void AssertRowEqualsApply<TScore>(TScore score, Row r, string context)
        where TScore : unmanaged, IScoreModifier
    {
        var row = r.Scores();
        var expected = row.Select((s, j) => score.Apply(s, r.Batch, r.Head, r.Q, r.K0 + j)).ToArray();
        score.ApplyRow(row, r.Batch, r.Head, r.Q, r.K0);
        for (int j = 0; j < row.Length; j++)
            if (BitConverter.SingleToInt32Bits(row[j]) != BitConverter.SingleToInt32Bits(expected[j]))
                throw new XunitException(
                    $"{typeof(TScore).Name}: ApplyRow[{j}] = {row[j]:R}, Apply = {expected[j]:R} "
                    + $"({Ulps(row[j], expected[j])} ulps). {context}");
    }

    private static long Ulps(float a, float b) =>
        Math.Abs((long)BitConverter.SingleToInt32Bits(a) - BitConverter.SingleToInt32Bits(b));
}
