using FsCheck;
using FsCheck.Xunit;
using Managed.Models.Generation;
using Xunit;

namespace Managed.Tests.Generation;

/// <summary>
/// The sampler's processors against their definitions (Hugging Face's logits processors and
/// warpers): greedy is argmax, top-k keeps K, top-p keeps the smallest prefix with mass ≥ P,
/// a small temperature is greedy, the repetition penalty divides positive and multiplies
/// negative logits once per distinct token, a seed fixes the draws.
/// </summary>
public sealed class SamplerTests
{
    // Distinct logits in [-5, 5): a shuffled ramp plus noise smaller than its step.
    private static float[] Logits(int vocab, int seed)
    {
        var random = new Random(seed);
        var ramp = Enumerable.Range(0, vocab).OrderBy(_ => random.Next()).ToArray();
        return [.. ramp.Select(r => -5f + 10f * r / vocab + 1e-3f * random.NextSingle())];
    }

    private static int ArgMax(float[] x) => Array.IndexOf(x, x.Max());

    private static double[] Softmax(float[] x)
    {
        double max = x.Max();
        var e = x.Select(v => Math.Exp(v - max)).ToArray();
        double sum = e.Sum();
        return [.. e.Select(v => v / sum)];
    }

    [Property(MaxTest = 50)]
    public bool GreedyIsArgMax(PositiveInt vocab, int seed)
    {
        var logits = Logits(vocab.Get % 300 + 1, seed);
        var sampler = new Sampler(logits.Length, SamplingOptions.Greedy);
        var random = new SamplingRandom(1);
        return sampler.Sample(logits.ToArray(), [], ref random) == ArgMax(logits);
    }

    [Fact]
    public void GreedyTieGoesToTheLowerId()
    {
        var sampler = new Sampler(4, SamplingOptions.Greedy);
        var random = new SamplingRandom(1);
        Assert.Equal(1, sampler.Sample(new float[] { 0, 2, 1, 2 }, [], ref random));
    }

    [Property(MaxTest = 50)]
    public bool TopKKeepsTheKLargest(PositiveInt vocab, PositiveInt k, int seed)
    {
        var logits = Logits(vocab.Get % 300 + 2, seed);
        int keep = k.Get % (logits.Length + 5) + 1;   // sometimes past the vocabulary
        var sampler = new Sampler(logits.Length, new SamplingOptions(TopK: keep));
        var kept = sampler.Candidates(logits.ToArray(), []).ToArray();
        var expected = Enumerable.Range(0, logits.Length)
            .OrderByDescending(i => logits[i]).Take(keep).ToArray();
        return kept.SequenceEqual(expected);
    }

    [Fact]
    public void TopKKeepsTiesWithTheKth()
    {
        var sampler = new Sampler(5, new SamplingOptions(TopK: 2));
        var kept = sampler.Candidates(new float[] { 3, 1, 2, 2, 0 }, []).ToArray();
        Assert.Equal([0, 2, 3], kept.Order());
    }

    [Property(MaxTest = 100)]
    public bool TopPKeepsTheSmallestPrefixWithMassAtLeastP(PositiveInt vocab, int seed,
        PositiveInt pRaw)
    {
        var logits = Logits(vocab.Get % 200 + 2, seed);
        float p = (pRaw.Get % 1000 + 1) / 1000f;
        var sampler = new Sampler(logits.Length, new SamplingOptions(TopP: p));
        var kept = sampler.Candidates(logits.ToArray(), []).ToArray();
        var probs = Softmax(logits);
        var order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ToArray();
        // The mass of the kept prefix reaches p; without its last token it does not.
        double mass = kept.Sum(i => probs[i]);
        double without = mass - probs[kept[^1]];
        return kept.SequenceEqual(order.Take(kept.Length))
            && (mass >= p - 1e-9 || kept.Length == logits.Length) && without < p + 1e-9;
    }

    [Fact]
    public void TopPOnAKnownDistribution()
    {
        // probabilities 0.5, 0.25, 0.125, 0.125
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.25f), MathF.Log(0.125f),
            MathF.Log(0.125f)];
        int Count(float p) =>
            new Sampler(4, new SamplingOptions(TopP: p)).Candidates(logits.ToArray(), []).Length;
        Assert.Equal(1, Count(0.4f));
        Assert.Equal(2, Count(0.6f));
        Assert.Equal(3, Count(0.8f));
        Assert.Equal(4, Count(0.9f));
    }

    [Property(MaxTest = 30)]
    public bool SmallTemperatureIsGreedy(PositiveInt vocab, int seed)
    {
        var logits = Logits(vocab.Get % 100 + 2, seed);
        var sampler = new Sampler(logits.Length, new SamplingOptions(Temperature: 1e-4f));
        var random = new SamplingRandom((ulong)seed);
        for (int i = 0; i < 20; i++)
            if (sampler.Sample(logits.ToArray(), [], ref random) != ArgMax(logits)) return false;
        return true;
    }

    [Fact]
    public void TemperatureDividesTheLogits()
    {
        var sampler = new Sampler(3, new SamplingOptions(Temperature: 2f));
        var row = new float[] { 4, -2, 1 };
        sampler.Candidates(row, []);
        Assert.Equal([2f, -1f, 0.5f], row);
    }

    [Fact]
    public void RepetitionPenaltyIsHuggingFaces()
    {
        // HF: score = where(score < 0, score * penalty, score / penalty) on gathered ids,
        // each distinct id once however often it occurs.
        var sampler = new Sampler(5, new SamplingOptions(RepetitionPenalty: 2f));
        var row = new float[] { 4, -3, 1, 0, 6 };
        sampler.ApplyRepetitionPenalty(row, [0, 1, 1, 3, 0, 0]);
        Assert.Equal([2f, -6f, 1f, 0f, 6f], row);
        // Next call: tokens penalized again, from the new values.
        sampler.ApplyRepetitionPenalty(row, [0]);
        Assert.Equal(1f, row[0]);
    }

    [Fact]
    public void RepetitionPenaltyChangesTheGreedyChoice()
    {
        var sampler = new Sampler(3, SamplingOptions.Greedy with { RepetitionPenalty = 3f });
        var random = new SamplingRandom(0);
        Assert.Equal(0, sampler.Sample(new float[] { 3, 2, -1 }, [1], ref random));
        Assert.Equal(1, sampler.Sample(new float[] { 3, 2, -1 }, [0, 2], ref random));
    }

    [Property(MaxTest = 20)]
    public bool SameSeedSameSequence(ulong seed, int logitSeed)
    {
        var logits = Logits(40, logitSeed);
        var options = new SamplingOptions(Temperature: 1.3f, TopK: 20, TopP: 0.9f,
            RepetitionPenalty: 1.2f, Seed: seed);
        int[] Draw()
        {
            var sampler = new Sampler(40, options);
            var random = new SamplingRandom(seed);
            var history = new List<int>();
            for (int i = 0; i < 50; i++)
                history.Add(sampler.Sample(logits.ToArray(), history.ToArray(), ref random));
            return [.. history];
        }
        return Draw().SequenceEqual(Draw());
    }

    [Fact]
    public void DrawsFollowTheDistribution()
    {
        float[] logits = [MathF.Log(0.6f), MathF.Log(0.3f), MathF.Log(0.1f)];
        var sampler = new Sampler(3, new SamplingOptions(Temperature: 1f));
        var random = new SamplingRandom(7);
        var counts = new int[3];
        const int draws = 20000;
        for (int i = 0; i < draws; i++) counts[sampler.Sample(logits.ToArray(), [], ref random)]++;
        Assert.InRange(counts[0] / (double)draws, 0.58, 0.62);
        Assert.InRange(counts[1] / (double)draws, 0.28, 0.32);
        Assert.InRange(counts[2] / (double)draws, 0.09, 0.11);
    }

    [Fact]
    public void RandomIsXoshiro256StarStarSeededBySplitMix64()
    {
        // SplitMix64 from 0 gives 0xe220a8397b1dcdaf, ... (its known first output); the
        // first xoshiro256** output from that state, by a transcription of the C code
        // (prng.di.unimi.it).
        var random = new SamplingRandom(0);
        ulong first = random.NextUInt64();
        var again = new SamplingRandom(0);
        Assert.Equal(first, again.NextUInt64());
        Assert.NotEqual(first, new SamplingRandom(1).NextUInt64());
        Assert.Equal(0x99EC5F36CB75F2B4UL, first);
    }

    [Fact]
    public void DrawsAllocateNothing()
    {
        var logits = Logits(500, 3);
        var sampler = new Sampler(500, new SamplingOptions(Temperature: 0.8f, TopK: 50,
            TopP: 0.9f, RepetitionPenalty: 1.1f));
        var random = new SamplingRandom(1);
        var row = new float[500];
        int[] history = [1, 2, 3];
        logits.CopyTo(row, 0);
        sampler.Sample(row, history, ref random);   // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            logits.CopyTo(row, 0);
            sampler.Sample(row, history, ref random);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Theory]
    [InlineData(-1f, 0, 1f, 1f)]
    [InlineData(float.NaN, 0, 1f, 1f)]
    [InlineData(1f, -1, 1f, 1f)]
    [InlineData(1f, 0, 0f, 1f)]
    [InlineData(1f, 0, 1.5f, 1f)]
    [InlineData(1f, 0, 1f, 0f)]
    public void OptionsOutOfRangeThrow(float t, int k, float p, float r) =>
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            new Sampler(10, new SamplingOptions(t, k, p, r)));
}
