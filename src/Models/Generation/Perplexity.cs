namespace Managed.Models.Generation;

/// <summary>How <see cref="Perplexity.Evaluate"/> windows a token stream.</summary>
public sealed record PerplexityOptions
{
    /// <summary>Tokens per window (the context a prediction sees at most); null = the
    /// model's <see cref="ICausalModel.MaxLength"/>.</summary>
    public int? Window { get; init; }

    /// <summary>Tokens the window moves by; null = the window (disjoint windows). A stride
    /// below the window gives each scored token more context, at more cost.</summary>
    public int? Stride { get; init; }

    /// <summary>Positions whose logits one <see cref="ICausalModel.Append"/> call returns
    /// (bounds the logits buffer: chunk × vocab floats); default 128.</summary>
    public int Chunk { get; init; } = 128;
}

/// <summary>The perplexity of a token stream under a model.</summary>
/// <param name="Tokens">Tokens scored (predicted from their context).</param>
/// <param name="MeanNll">Mean over the scored tokens of −log softmax(logits)[token], in
/// nats.</param>
public readonly record struct PerplexityResult(int Tokens, double MeanNll)
{
    /// <summary>exp(<see cref="MeanNll"/>).</summary>
    public double Value => Math.Exp(MeanNll);
}

/// <summary>
/// Perplexity over windows, as Hugging Face's "perplexity of fixed-length models" recipe:
/// windows [begin, end) with end = min(begin + window, N), begin = 0, stride, 2·stride, ...
/// until end = N. A window scores the targets t in [max(previous end, begin + 1), end), each
/// from the logits at position t − 1 after the window's tokens from begin; so every token but
/// the first is scored once (with disjoint windows, each window's first token is not).
/// </summary>
public static class Perplexity
{
    /// <summary>
    /// The perplexity of <paramref name="tokens"/> under <paramref name="model"/>, which is
    /// reset before each window and uses sequence 0. <paramref name="progress"/> receives
    /// (tokens scored so far, tokens to score) after each chunk. Sums in double precision.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than 2 tokens, a token outside the
    /// vocabulary, a window larger than the model's sequence or below 2, a stride below 1 or
    /// above the window, or a chunk below 1.</exception>
    public static PerplexityResult Evaluate(ICausalModel model, ReadOnlySpan<int> tokens,
        PerplexityOptions? options = null, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new PerplexityOptions();
        int n = tokens.Length, vocab = model.VocabSize;
        int window = options.Window ?? model.MaxLength;
        int stride = options.Stride ?? window;
        if (n < 2)
            throw new ArgumentException($"{n} tokens; perplexity needs at least 2.",
                nameof(tokens));
        if (window < 2 || window > model.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(options), window,
                $"the window must be in [2, {model.MaxLength}] (the model's sequence).");
        if (stride < 1 || stride > window)
            throw new ArgumentOutOfRangeException(nameof(options), stride,
                $"the stride must be in [1, {window}] (the window).");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Chunk, 1, nameof(options));
        foreach (int t in tokens)
            if ((uint)t >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(tokens), t,
                    $"token id {t} is outside the vocabulary [0, {vocab}).");

        int total = 0;
        for (int begin = 0, previous = 0; ; begin += stride)
        {
            int end = Math.Min(begin + window, n);
            total += end - Math.Max(previous, begin + 1);
            previous = end;
            if (end == n) break;
        }

        int chunk = Math.Min(options.Chunk, window);
        var logits = new float[chunk * vocab];   // (chunk, vocab)
        double sum = 0;
        int scored = 0;
        for (int begin = 0, previous = 0; ; begin += stride)
        {
            int end = Math.Min(begin + window, n);
            int first = Math.Max(previous, begin + 1);   // the first target
            model.Reset();
            // Context only: positions begin .. first − 2 predict no target.
            if (first - 1 > begin)
                model.Append(0, tokens[begin..(first - 1)], logits.AsSpan(0, vocab));
            // Positions first − 1 .. end − 2 predict targets first .. end − 1.
            for (int p = first - 1; p < end - 1; p += chunk)
            {
                int count = Math.Min(chunk, end - 1 - p);
                model.Append(0, tokens.Slice(p, count), logits.AsSpan(0, count * vocab));
                for (int i = 0; i < count; i++)
                    sum += NegativeLogSoftmax(logits.AsSpan(i * vocab, vocab), tokens[p + i + 1]);
                scored += count;
                progress?.Invoke(scored, total);
            }
            previous = end;
            if (end == n) break;
        }
        return new PerplexityResult(scored, sum / scored);
    }

    /// <summary>−log softmax(<paramref name="row"/>)[<paramref name="target"/>] =
    /// log Σ exp(row − max) + max − row[target], in double precision.</summary>
    public static double NegativeLogSoftmax(ReadOnlySpan<float> row, int target)
    {
        float max = float.NegativeInfinity;
        foreach (float x in row) max = Math.Max(max, x);
        double sum = 0;
        foreach (float x in row) sum += Math.Exp((double)x - max);
        return Math.Log(sum) + max - row[target];
    }
}
