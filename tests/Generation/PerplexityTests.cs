using Managed.Models.Generation;
using Xunit;

namespace Managed.Tests.Generation;

/// <summary>
/// Perplexity on <see cref="FakeModel"/> (whose logits depend on the position, so windows
/// matter) against a hand computation of HF's windowed recipe: target t scored once, from the
/// logits at position t − 1 − begin of the window that scores it.
/// </summary>
public sealed class PerplexityTests
{
    private static int[] Tokens(int n, int vocab, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => random.Next(vocab))];
    }

    // −log p(tokens[t] | the window from begin), straight from the fake's table.
    private static double Nll(FakeModel model, int[] tokens, int begin, int t)
    {
        var row = new float[model.VocabSize];
        model.Row(tokens[t - 1], t - 1 - begin, row);
        double max = row.Max();
        return Math.Log(row.Sum(x => Math.Exp(x - max))) + max - row[tokens[t]];
    }

    [Theory]
    [InlineData(100, 16, 16, 5)]    // disjoint windows: each window's first token unscored
    [InlineData(100, 16, 5, 4)]     // overlapping windows
    [InlineData(100, 16, 1, 3)]     // stride 1: every token with the longest context
    [InlineData(17, 16, 16, 128)]   // one full window, then a window of one token
    [InlineData(10, 16, 8, 2)]      // shorter than the window
    public void EqualsHandComputation(int n, int window, int stride, int chunk)
    {
        var model = new FakeModel(vocab: 30, maxLength: 32, period: 5);
        var tokens = Tokens(n, 30, n + window + stride);
        double sum = 0;
        int count = 0, previous = 0;
        for (int begin = 0; ; begin += stride)
        {
            int end = Math.Min(begin + window, n);
            for (int t = Math.Max(previous, begin + 1); t < end; t++, count++)
                sum += Nll(model, tokens, begin, t);
            previous = end;
            if (end == n) break;
        }
        var progress = new List<(int Done, int Total)>();
        var result = Perplexity.Evaluate(model, tokens,
            new PerplexityOptions { Window = window, Stride = stride, Chunk = chunk },
            (done, total) => progress.Add((done, total)));
        Assert.Equal(count, result.Tokens);
        Assert.Equal(sum / count, result.MeanNll, 1e-9);
        Assert.Equal(Math.Exp(sum / count), result.Value, 1e-6);
        Assert.Equal((count, count), progress[^1]);
        Assert.All(progress, p => Assert.Equal(count, p.Total));
        Assert.Equal(progress.Select(p => p.Done).Order(), progress.Select(p => p.Done));
    }

    [Fact]
    public void DefaultWindowIsTheModelLength()
    {
        var model = new FakeModel(vocab: 20, maxLength: 24);
        var tokens = Tokens(60, 20, 1);
        var byDefault = Perplexity.Evaluate(model, tokens);
        var explicitly = Perplexity.Evaluate(model, tokens,
            new PerplexityOptions { Window = 24, Stride = 24 });
        Assert.Equal(explicitly, byDefault);
        Assert.Equal(60 - 3, byDefault.Tokens);   // windows start at 0, 24, 48
        Assert.All(model.Appends, a => Assert.Equal(0, a.Sequence));
    }

    [Fact]
    public void UniformModelHasPerplexityOfTheVocabulary()
    {
        var model = new UniformModel();
        var result = Perplexity.Evaluate(model, Tokens(40, 7, 3),
            new PerplexityOptions { Window = 10, Stride = 3 });
        Assert.Equal(7, result.Value, 1e-9);
    }

    [Fact]
    public void BadArgumentsThrow()
    {
        var model = new FakeModel(vocab: 10, maxLength: 8);
        Assert.Throws<ArgumentException>(() => Perplexity.Evaluate(model, [1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Perplexity.Evaluate(model, [1, 10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Perplexity.Evaluate(model, [1, 2],
            new PerplexityOptions { Window = 9 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Perplexity.Evaluate(model, [1, 2],
            new PerplexityOptions { Window = 4, Stride = 5 }));
    }

    // Every logit 0: each token has probability 1/7.
    private sealed class UniformModel() : Managed.Models.ICausalModel
    {
        private readonly FakeModel _shape = new(vocab: 7, maxLength: 16);
        public Managed.Models.ModelConfig Config => _shape.Config;
        public Managed.Kernels.Devices.ComputeDevice Device => _shape.Device;
        public int VocabSize => 7;
        public int MaxBatch => 1;
        public int MaxLength => 16;
        public int Length(int sequence) => _shape.Length(sequence);
        public void Reset() => _shape.Reset();
        public void Append(int sequence, ReadOnlySpan<int> tokens, Span<float> logits)
        {
            _shape.Append(sequence, tokens, logits);
            logits.Clear();
        }
        public void Step(ReadOnlySpan<int> tokens, Span<float> logits) =>
            throw new NotSupportedException();
        public void Dispose() { }
    }
}
