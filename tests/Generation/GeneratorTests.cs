using Managed.Models.Generation;
using Xunit;

namespace Managed.Tests.Generation;

/// <summary>
/// The generator on <see cref="FakeModel"/>: greedy tokens equal a hand-run argmax loop, stop
/// tokens and limits end sequences, a batch of prompts of different lengths equals each
/// prompt alone, tokens stream in order, and the decode loop allocates nothing.
/// </summary>
public sealed class GeneratorTests
{
    // The argmax continuation computed directly from the fake's table.
    private static List<int> GreedyByHand(FakeModel model, int[] prompt, int count,
        Func<int, bool>? stop = null)
    {
        var tokens = new List<int>(prompt);
        var generated = new List<int>();
        var row = new float[model.VocabSize];
        for (int i = 0; i < count; i++)
        {
            model.Row(tokens[^1], tokens.Count - 1, row);
            int next = Array.IndexOf(row, row.Max());
            generated.Add(next);
            tokens.Add(next);
            if (stop?.Invoke(next) == true) break;
        }
        return generated;
    }

    [Fact]
    public void GreedyEqualsArgMaxByHand()
    {
        var model = new FakeModel();
        var result = new Generator(model, new GenerationOptions { MaxNewTokens = 20 })
            .Generate([3, 14, 15]);
        Assert.Equal(GreedyByHand(model, [3, 14, 15], 20), result.Tokens);
        Assert.Equal(FinishReason.MaxNewTokens, result.Reason);
        // One prefill, then one step per token after the first.
        Assert.Single(model.Appends);
        Assert.Equal(19, model.Steps.Count);
        Assert.Equal(3 + 19, model.Length(0));
    }

    [Fact]
    public void StopTokenEndsTheSequenceAndIsReturned()
    {
        var model = new FakeModel();
        var free = GreedyByHand(model, [1, 2], 30);
        int stop = free[5];
        int at = free.IndexOf(stop);
        var result = new Generator(model, new GenerationOptions
        {
            MaxNewTokens = 30, StopTokens = [stop],
        }).Generate([1, 2]);
        Assert.Equal(free.Take(at + 1), result.Tokens);
        Assert.Equal(FinishReason.StopToken, result.Reason);
    }

    [Fact]
    public void ConfigEosStopsUnlessTurnedOff()
    {
        var probe = new FakeModel();
        var free = GreedyByHand(probe, [4], 30);
        int eos = free[3];
        var model = new FakeModel(eos: eos);
        var stopped = new Generator(model, new GenerationOptions { MaxNewTokens = 30 })
            .Generate([4]);
        Assert.Equal(eos, stopped.Tokens[^1]);
        Assert.Equal(FinishReason.StopToken, stopped.Reason);
        var past = new Generator(model, new GenerationOptions
        {
            MaxNewTokens = 30, StopAtEos = false,
        }).Generate([4]);
        Assert.Equal(free, past.Tokens);
    }

    [Fact]
    public void ModelLengthEndsTheSequence()
    {
        var model = new FakeModel(maxLength: 10);
        var result = new Generator(model, new GenerationOptions { MaxNewTokens = 50 })
            .Generate([1, 2, 3, 4]);
        Assert.Equal(7, result.Tokens.Length);          // 10 − 4 + 1: the last not appended
        Assert.Equal(FinishReason.MaxLength, result.Reason);
        Assert.Equal(GreedyByHand(model, [1, 2, 3, 4], 7), result.Tokens);
    }

    [Fact]
    public void ZeroNewTokensRunsNothing()
    {
        var model = new FakeModel();
        var result = new Generator(model, new GenerationOptions { MaxNewTokens = 0 })
            .Generate([1]);
        Assert.Empty(result.Tokens);
        Assert.Empty(model.Appends);
    }

    public static TheoryData<SamplingOptions> Samplings() => new()
    {
        SamplingOptions.Greedy,
        SamplingOptions.Greedy with { RepetitionPenalty = 1.3f },
        new SamplingOptions(Temperature: 0.9f, TopK: 10, TopP: 0.9f, RepetitionPenalty: 1.1f,
            Seed: 5),
    };

    [Theory]
    [MemberData(nameof(Samplings))]
    public void BatchOfDifferentLengthsEqualsEachPromptAlone(SamplingOptions sampling)
    {
        int[][] prompts = [[1, 2, 3], [7], [9, 8, 7, 6, 5, 4, 3], [11, 12], [0, 1, 2, 3, 4]];
        var probe = new FakeModel();
        // Stop tokens that end some prompts early and not others.
        int stop = GreedyByHand(probe, prompts[3], 4)[3];
        var options = new GenerationOptions
        {
            MaxNewTokens = 12, Sampling = sampling, StopTokens = [stop],
        };
        var model = new FakeModel(maxLength: 18);
        var batch = new Generator(model, options).Generate(prompts);
        for (int b = 0; b < prompts.Length; b++)
        {
            // Alone, at index 0 with the seed of index b (sequence b draws from seed + b).
            var alone = new Generator(new FakeModel(maxLength: 18), options with
            {
                Sampling = sampling with { Seed = sampling.Seed + (ulong)b },
            }).Generate(prompts[b]);
            Assert.Equal(alone.Tokens, batch[b].Tokens);
            Assert.Equal(alone.Reason, batch[b].Reason);
        }
        // The longest prompt (7 tokens, budget 18 − 7 + 1 = 12) still fits: no overflow.
        Assert.All(Enumerable.Range(0, prompts.Length),
            b => Assert.True(model.Length(b) <= 18));
        if (sampling == SamplingOptions.Greedy)
            for (int b = 0; b < prompts.Length; b++)
                Assert.Equal(GreedyByHand(probe, prompts[b], 12, t => t == stop),
                    batch[b].Tokens);
    }

    [Fact]
    public void BudgetsLimitedByTheModelLengthDoNotOverflow()
    {
        // Prompt 1 fills the model at once; the others keep running around it.
        int[][] prompts = [[1], [1, 2, 3, 4, 5, 6, 7, 8, 9], [2, 3]];
        var model = new FakeModel(maxLength: 10);
        var results = new Generator(model, new GenerationOptions { MaxNewTokens = 8 })
            .Generate(prompts);
        Assert.Equal([8, 2, 8], results.Select(r => r.Tokens.Length));
        Assert.Equal(FinishReason.MaxLength, results[1].Reason);
        for (int b = 0; b < 3; b++)
            Assert.Equal(GreedyByHand(model, prompts[b], results[b].Tokens.Length),
                results[b].Tokens);
    }

    [Fact]
    public void StepsShrinkAsTheHighestSequencesStop()
    {
        // Greedy continuations with a stop token early in one: later steps leave it out when
        // it sits in the last slot.
        int[][] prompts = [[1, 2], [3, 4]];
        var probe = new FakeModel();
        int stop = GreedyByHand(probe, prompts[1], 3)[1];
        Assert.DoesNotContain(stop, GreedyByHand(probe, prompts[0], 10));
        var model = new FakeModel();
        var results = new Generator(model, new GenerationOptions
        {
            MaxNewTokens = 10, StopTokens = [stop],
        }).Generate(prompts);
        Assert.Equal(2, results[1].Tokens.Length);
        Assert.Equal(10, results[0].Tokens.Length);
        Assert.Equal(2, model.Steps[0]);
        Assert.All(model.Steps.Skip(1), n => Assert.Equal(1, n));
    }

    [Fact]
    public void TokensStreamInOrderAsTheyCome()
    {
        int[][] prompts = [[5, 6], [7], [8, 9, 10]];
        var model = new FakeModel();
        var streamed = new List<(int Sequence, int Token, int StepsSoFar)>();
        var results = new Generator(model, new GenerationOptions { MaxNewTokens = 6 })
            .Generate(prompts, (b, t) => streamed.Add((b, t, model.Steps.Count)));
        for (int b = 0; b < 3; b++)
            Assert.Equal(results[b].Tokens, streamed.Where(s => s.Sequence == b)
                .Select(s => s.Token));
        // Token g of every sequence comes after step g − 1 and before step g, in index order.
        for (int i = 0; i < streamed.Count; i++)
        {
            Assert.Equal(i / 3, streamed[i].StepsSoFar);
            Assert.Equal(i % 3, streamed[i].Sequence);
        }
    }

    [Fact]
    public void DecodeLoopAllocatesNothingPerToken()
    {
        long Allocated(int maxNew)
        {
            var model = new FakeModel(vocab: 64, maxLength: 600);
            var generator = new Generator(model, new GenerationOptions
            {
                MaxNewTokens = maxNew,
                Sampling = new SamplingOptions(0.9f, 20, 0.9f, 1.1f, 1),
            });
            int[][] prompts = [[1, 2, 3], [4]];
            model.Steps.Capacity = 2000;   // the fake's own records must not grow
            generator.Generate(prompts);   // warm up (JIT)
            long before = GC.GetAllocatedBytesForCurrentThread();
            generator.Generate(prompts);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        // What grows with the tokens: the history buffers and the result arrays (2 sequences,
        // 4 bytes a token each), allocated once per call; nothing per step.
        long small = Allocated(50), large = Allocated(450);
        Assert.True(large - small <= 2 * 2 * 400 * sizeof(int) + 64,
            $"50 tokens: {small} bytes, 450 tokens: {large} bytes");
    }

    [Fact]
    public void BadPromptsThrow()
    {
        var model = new FakeModel(maxBatch: 2, maxLength: 8);
        var generator = new Generator(model, new GenerationOptions());
        Assert.Throws<ArgumentException>(() => generator.Generate([[1], [2], [3]]));
        Assert.Throws<ArgumentException>(() => generator.Generate(Array.Empty<int>()));
        Assert.Throws<ArgumentException>(() => generator.Generate(new int[9]));
        Assert.Throws<ArgumentOutOfRangeException>(() => generator.Generate([50]));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            new Generator(model, new GenerationOptions { StopTokens = [50] }));
    }
}
