using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Xunit.Sdk;

namespace Managed.Tests.Variants;

/// <summary>
/// ApplyRow equals Apply element by element for the temperature and re-weighting modifiers.
/// Both forms compute the same float expression (one multiply by a host-side or per-row
/// factor, or one add), so they must agree bit for bit.
/// </summary>
public sealed class ScoreModifierRowProperties
{
    private static Arbitrary<ScoreModifierProperties.Row> Rows { get; } =
        (from batch in Gen.Choose(0, 3)
         from head in Gen.Choose(0, 70)
         from q in Gen.Choose(-200, 400)
         from k0 in Gen.Choose(0, 400)
         from length in Gen.Choose(0, 70)
         from seed in AttentionGen.Seed
         select new ScoreModifierProperties.Row(batch, head, q, k0, length, seed)).ToArbitrary();

    [Property(MaxTest = 200)]
    public Property TemperatureRowEqualsApply() =>
        Prop.ForAll(Rows, Gen.Elements(0.05f, 0.5f, 1f, 3f, 1000f).ToArbitrary(),
            (r, t) => AssertExact(new TemperatureScore(t), r));

    [Property(MaxTest = 200)]
    public Property LogPositionTemperatureRowEqualsApply() =>
        Prop.ForAll(Rows, Gen.Elements(-0.2f, 0f, 0.1f, 1f).ToArbitrary(), Gen.Elements(0.5f, 1f, 2f).ToArbitrary(),
            (r, a, b) => AssertExact(new LogPositionTemperatureScore(a, b), r));


    [Property(MaxTest = 300)]
    public Property KeyReweightRowEqualsApply() =>
        Prop.ForAll(Rows,
            (from start in Gen.Choose(0, 420) from width in Gen.Choose(0, 60)
             from f in Gen.Elements(0.01f, 0.5f, 1f, 2f, 100f)
             select new KeyReweightScore(start, start + width, f, 0xF0F0F0F0F0F0F0F0UL)).ToArbitrary(),
            (r, score) => AssertExact(score, r));

    /// <summary>Factor 1 (ln 1 = 0) and temperature 1 and τ ≡ 1 leave every score unchanged.</summary>
    [Property(MaxTest = 100)]
    public Property NeutralParametersAreIdentity() =>
        Prop.ForAll(Rows, r =>
        {
            var input = r.Scores();
            foreach (var row in new[] { Apply(new KeyReweightScore(0, 1000, 1f), r),
                Apply(new TemperatureScore(1f), r), Apply(new LogPositionTemperatureScore(0f, 1f), r) })
                for (int j = 0; j < row.Length; j++)
                    if (row[j] != input[j]) throw new XunitException($"[{j}] {row[j]:R} != {input[j]:R}. {r}");
        });

    private static float[] Apply<TScore>(TScore score, ScoreModifierProperties.Row r) where TScore : struct, IScoreModifier
    {
        var row = r.Scores();
        score.ApplyRow(row, r.Batch, r.Head, r.Q, r.K0);
        return row;
    }

    private static void AssertExact<TScore>(TScore score, ScoreModifierProperties.Row r)
        where TScore : struct, IScoreModifier
    {
        var input = r.Scores();
        var row = Apply(score, r);
        for (int j = 0; j < row.Length; j++)
        {
            float expected = score.Apply(input[j], r.Batch, r.Head, r.Q, r.K0 + j);
            if (BitConverter.SingleToInt32Bits(row[j]) != BitConverter.SingleToInt32Bits(expected))
                throw new XunitException($"{typeof(TScore).Name}: ApplyRow[{j}] = {row[j]:R}, Apply = {expected:R}. {r}");
        }
    }
}
