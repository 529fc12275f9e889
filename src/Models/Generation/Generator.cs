namespace Managed.Models.Generation;

/// <summary>
/// Generates tokens after a batch of prompts with an <see cref="ICausalModel"/>: each prompt
/// is prefilled into its own sequence (<see cref="ICausalModel.Append"/>, logits of the last
/// token), then every decode step appends one token to each sequence still running
/// (<see cref="ICausalModel.Step"/>) and chooses the next with a <see cref="Sampler"/>. A
/// sequence stops at a stop token, at <see cref="GenerationOptions.MaxNewTokens"/>, or when
/// the model's sequence is full. Buffers are allocated once per <c>Generate</c> call;
/// the decode loop allocates nothing (the callback aside).
/// </summary>
/// <remarks>
/// Sequence b samples with the random stream of <see cref="SamplingOptions.Seed"/> + b, so a
/// prompt gives the same tokens alone and at index 0 of any batch (and greedy decoding gives
/// the same tokens at any index). <see cref="ICausalModel.Step"/> runs sequences
/// 0 .. n − 1: prompts are placed in the model's sequences by decreasing token budget, so
/// that a stopped sequence still inside that range (fed its last token again, its logits
/// unused) never outgrows <see cref="ICausalModel.MaxLength"/>.
/// </remarks>
public sealed class Generator
{
    private readonly ICausalModel _model;
    private readonly Sampler _sampler;
    private readonly bool[] _stop;   // (vocab) true for the ids that end a sequence

    /// <summary>A generator over <paramref name="model"/> (which it does not own).</summary>
    /// <exception cref="ArgumentOutOfRangeException">MaxNewTokens &lt; 0, a stop token outside
    /// the vocabulary, or a sampling option out of range.</exception>
    public Generator(ICausalModel model, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxNewTokens);
        _model = model;
        Options = options;
        _sampler = new Sampler(model.VocabSize, options.Sampling);
        _stop = new bool[model.VocabSize];
        foreach (int t in options.StopTokens)
        {
            if ((uint)t >= (uint)model.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(options), t,
                    $"stop token {t} is outside the vocabulary [0, {model.VocabSize}).");
            _stop[t] = true;
        }
        if (options.StopAtEos)
            foreach (int t in model.Config.EosTokenIds)
                if ((uint)t < (uint)model.VocabSize) _stop[t] = true;
    }

    /// <summary>The options it generates with.</summary>
    public GenerationOptions Options { get; }

    /// <summary>The tokens after one prompt; <see cref="Generate(IReadOnlyList{int[]},
    /// TokenCallback?)"/> with a batch of one.</summary>
    public GenerationResult Generate(int[] prompt, TokenCallback? onToken = null) =>
        Generate([prompt], onToken)[0];

    /// <summary>
    /// Empties the model (<see cref="ICausalModel.Reset"/>) and generates after every prompt
    /// together; <paramref name="onToken"/> receives each token as it is chosen. Result b is
    /// prompt b's.
    /// </summary>
    /// <exception cref="ArgumentException">No prompt, more prompts than
    /// <see cref="ICausalModel.MaxBatch"/>, an empty prompt or one longer than
    /// <see cref="ICausalModel.MaxLength"/>, or a token id outside the vocabulary.</exception>
    public GenerationResult[] Generate(IReadOnlyList<int[]> prompts, TokenCallback? onToken = null)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        int batch = prompts.Count, vocab = _model.VocabSize, maxLength = _model.MaxLength;
        if (batch == 0) throw new ArgumentException("no prompt given.", nameof(prompts));
        if (batch > _model.MaxBatch)
            throw new ArgumentException($"{batch} prompts; the model holds at most "
                + $"{_model.MaxBatch} sequences.", nameof(prompts));

        // Token budget of prompt b: generated token g needs the model to hold prompt + g.
        var budget = new int[batch];
        for (int b = 0; b < batch; b++)
        {
            var p = prompts[b] ?? throw new ArgumentNullException(nameof(prompts));
            if (p.Length == 0 || p.Length > maxLength)
                throw new ArgumentException($"prompt {b} holds {p.Length} tokens (expected 1 "
                    + $"to the model's {maxLength}).", nameof(prompts));
            foreach (int t in p)
                if ((uint)t >= (uint)vocab)
                    throw new ArgumentOutOfRangeException(nameof(prompts), t,
                        $"prompt {b}: token id {t} is outside the vocabulary [0, {vocab}).");
            budget[b] = Math.Min(Options.MaxNewTokens, maxLength - p.Length + 1);
        }
        var results = new GenerationResult[batch];
        if (Options.MaxNewTokens == 0)
        {
            for (int b = 0; b < batch; b++) results[b] = new([], FinishReason.MaxNewTokens);
            return results;
        }

        // slotOf[b]: prompt b's sequence in the model, by decreasing budget (stable).
        var order = new int[batch];
        for (int b = 0; b < batch; b++) order[b] = b;
        Array.Sort(order, (x, y) => budget[x] != budget[y]
            ? budget[y].CompareTo(budget[x]) : x.CompareTo(y));
        var slotOf = new int[batch];
        for (int s = 0; s < batch; s++) slotOf[order[s]] = s;

        var logits = new float[batch * vocab];   // (slot, vocab)
        var stepTokens = new int[batch];          // (slot)
        var history = new int[batch][];           // prompt b then its generated tokens
        var length = new int[batch];              // tokens in history[b]
        var done = new bool[batch];
        var reason = new FinishReason[batch];
        var random = new SamplingRandom[batch];
        for (int b = 0; b < batch; b++)
        {
            history[b] = new int[prompts[b].Length + budget[b]];
            prompts[b].CopyTo(history[b], 0);
            length[b] = prompts[b].Length;
            random[b] = new SamplingRandom(unchecked(Options.Sampling.Seed + (ulong)b));
        }

        _model.Reset();
        for (int b = 0; b < batch; b++)
            _model.Append(slotOf[b], prompts[b], logits.AsSpan(slotOf[b] * vocab, vocab));
        int running = batch;
        for (int b = 0; b < batch; b++)
            running -= Choose(b, slotOf[b]) ? 1 : 0;

        while (running > 0)
        {
            int slots = 0;   // 1 + the highest slot still running
            for (int b = 0; b < batch; b++)
                if (!done[b]) slots = Math.Max(slots, slotOf[b] + 1);
            for (int b = 0; b < batch; b++)
                if (slotOf[b] < slots) stepTokens[slotOf[b]] = history[b][length[b] - 1];
            _model.Step(stepTokens.AsSpan(0, slots), logits.AsSpan(0, slots * vocab));
            for (int b = 0; b < batch; b++)
                if (!done[b] && Choose(b, slotOf[b])) running--;
        }

        for (int b = 0; b < batch; b++)
            results[b] = new(history[b][prompts[b].Length..length[b]], reason[b]);
        return results;

        // Samples prompt b's next token from its slot's row; true when b stops with it.
        bool Choose(int b, int slot)
        {
            var row = logits.AsSpan(slot * vocab, vocab);
            int token = _sampler.Sample(row, history[b].AsSpan(0, length[b]), ref random[b]);
            history[b][length[b]++] = token;
            onToken?.Invoke(b, token);
            int generated = length[b] - prompts[b].Length;
            if (_stop[token]) reason[b] = FinishReason.StopToken;
            else if (generated == Options.MaxNewTokens) reason[b] = FinishReason.MaxNewTokens;
            else if (generated == budget[b]) reason[b] = FinishReason.MaxLength;
            else return false;
            done[b] = true;
            return true;
        }
    }
}
