using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Xunit;
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

    /// <summary>fp32 unit roundoff, 2^-24.</summary>
    private const double Unit = 5.960464477539063e-8;

    [Property(MaxTest = 100)]
    public Property NoScoreRowEqualsApply() =>
        Prop.ForAll(Rows, r => AssertRowEqualsApply(default(NoScore), r, (_, _) => 0, $"{r}"));

    /// <summary>
    /// ALiBi for 1..16 heads. Power-of-two head counts have exact slopes (2^-k); the others do
    /// not, so the bias slope * (k - q) is itself rounded. The row form may compute it another
    /// way (vector of k - q, FMA), so each element may differ by the rounding of the two terms:
    /// 2 u (|s| + |slope (k - q)|), i.e. about one ulp of each.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property AlibiRowEqualsApply() =>
        Prop.ForAll(Rows, Gen.Choose(1, 16).ToArbitrary(), (r, heads) =>
        {
            var alibi = new AlibiScore(heads);
            int head = r.Head % heads;
            AssertRowEqualsApply(alibi, r with { Head = head },
                (s, k) => 2 * Unit * (Math.Abs(s) + Math.Abs(alibi.Slope(head) * (k - r.Q))),
                $"heads={heads} {r with { Head = head }}");
        });

    /// <summary>
    /// The same over rows as long as the kernel's largest key tile (4096), the length ApplyRow
    /// sees on the CPU: the per-element bound must not grow with the row.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property AlibiLongRowEqualsApply() =>
        Prop.ForAll(Rows, Gen.Choose(1, 16).ToArbitrary(), Gen.Choose(1, 4096).ToArbitrary(),
            (r, heads, length) =>
            {
                var alibi = new AlibiScore(heads);
                var row = r with { Head = r.Head % heads, Length = length };
                AssertRowEqualsApply(alibi, row,
                    (s, k) => 2 * Unit * (Math.Abs(s) + Math.Abs(alibi.Slope(row.Head) * (k - r.Q))),
                    $"heads={heads} {row}");
            });

    /// <summary>
    /// Stronger than the two above: ApplyRow performs per element exactly Apply's float
    /// operations (int k - q to float, times the slope, plus s), so the two agree bit for bit,
    /// on rows up to the largest key tile and for any head count.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property AlibiRowEqualsApplyBitForBit() =>
        Prop.ForAll(Rows, Gen.Choose(1, 64).ToArbitrary(), Gen.Choose(0, 4096).ToArbitrary(),
            (r, heads, length) =>
            {
                var alibi = new AlibiScore(heads);
                var row = r with { Head = r.Head % heads, Length = length };
                AssertRowEqualsApply(alibi, row, (_, _) => 0, $"heads={heads} {row}");
            });

    /// <summary>
    /// Soft-capping: Apply uses MathF.Tanh, ApplyRow VectorMath's tanh (double lanes, rounded
    /// once). Both are within about an ulp or two of tanh (glibc's tanhf: up to 2 ulps), so they
    /// may differ by a few ulps of the result: 4 u |cap tanh(s / cap)|.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property SoftcapRowEqualsApply() =>
        Prop.ForAll(Rows, Gen.Elements(0.5f, 1f, 5f, 20f, 30f, 50f, 1000f).ToArbitrary(), (r, cap) =>
            AssertRowEqualsApply(new SoftcapScore(cap), r,
                (s, _) => 4 * Unit * Math.Abs(cap * Math.Tanh(s / cap)) + 1e-30, $"cap={cap} {r}"));

    /// <summary>
    /// Smallest case of <see cref="SoftcapRowEqualsApply"/>: cap 1000 and s = 1, so
    /// tanh(0.001) = 0.0009999997; 1000 tanh(0.001) = 0.99999970 to fp32. Apply gets that;
    /// the row form must too, to a few ulps.
    /// </summary>
    [Fact]
    public void SoftcapRowIsAccurateForSmallArguments()
    {
        var cap = new SoftcapScore(1000f);
        var row = Enumerable.Repeat(1f, 16).ToArray();
        cap.ApplyRow(row, 0, 0, 0, 0);
        Assert.Equal(0.9999997f, cap.Apply(1f, 0, 0, 0, 0));
        Assert.All(row, x => Assert.Equal(0.9999997, x, 6e-7));
    }

    /// <summary>
    /// Smallest case of <see cref="AlibiLongRowEqualsApply"/>: 3 heads (slope 2^(-8/3), not a
    /// power of two), q = 0, a row of 4096 zeros from k0 = 0. Apply gives slope * k rounded once;
    /// the row form must not drift from it by more than an ulp or two of the bias.
    /// </summary>
    [Fact]
    public void AlibiRowDoesNotDriftOverLongRows()
    {
        var alibi = new AlibiScore(3);
        var row = new float[4096];
        alibi.ApplyRow(row, 0, 0, 0, 0);
        float slope = alibi.Slope(0);
        for (int k = 0; k < row.Length; k++)
            Assert.True(Math.Abs(row[k] - slope * k) <= 2 * Unit * slope * k,
                $"k={k}: ApplyRow {row[k]:R}, Apply {alibi.Apply(0f, 0, 0, 0, k):R}");
    }

    /// <summary>
    /// Checks ApplyRow against Apply element by element: |row[j] - Apply(s_j, ..., k0 + j)|
    /// &lt;= bound(s_j, k0 + j).
    /// </summary>
    private static void AssertRowEqualsApply<TScore>(TScore score, Row r, Func<float, int, double> bound,
        string context)
        where TScore : struct, IScoreModifier
    {
        var input = r.Scores();
        var row = (float[])input.Clone();
        var expected = input.Select((s, j) => score.Apply(s, r.Batch, r.Head, r.Q, r.K0 + j)).ToArray();
        score.ApplyRow(row, r.Batch, r.Head, r.Q, r.K0);
        for (int j = 0; j < row.Length; j++)
            if (!(Math.Abs((double)row[j] - expected[j]) <= bound(input[j], r.K0 + j)))
                throw new XunitException(
                    $"{typeof(TScore).Name}: ApplyRow[{j}] = {row[j]:R}, Apply = {expected[j]:R} "
                    + $"({Ulps(row[j], expected[j])} ulps, bound {bound(input[j], r.K0 + j):g3}). {context}");
    }

    private static long Ulps(float a, float b) =>
        Math.Abs((long)BitConverter.SingleToInt32Bits(a) - BitConverter.SingleToInt32Bits(b));
}
