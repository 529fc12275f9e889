namespace Managed.Models.Generation;

/// <summary>
/// Chooses the next token from one row of logits by <see cref="SamplingOptions"/>, in Hugging
/// Face's order: repetition penalty, temperature, top-k, top-p, then a draw from the softmax of
/// the tokens kept (or argmax when greedy). Scratch buffers of the vocabulary's size are
/// allocated once, here; <see cref="Sample"/> allocates nothing. Not thread-safe: one sampler
/// per thread.
/// </summary>
/// <remarks>
/// Cost per token: O(V) for the penalty, temperature and top-k (a K-element min-heap), plus
/// sorting the tokens kept (K of them with top-k, every finite logit with top-p alone). Logits
/// must not be NaN; -∞ logits are never chosen. The draw is not torch.multinomial's, so a seed
/// does not reproduce HF's samples (greedy does reproduce HF's argmax, ties going to the lower
/// id).
/// </remarks>
public sealed class Sampler
{
    private readonly float[] _heap;     // (topK) the K largest logits, a min-heap
    private readonly float[] _keys;     // (vocab) −logit of each candidate, sorted ascending
    private readonly int[] _ids;        // (vocab) the candidates' token ids, in _keys' order
    private readonly double[] _weights; // (vocab) exp(logit − max) of the candidates
    private readonly int[] _stamp;      // (vocab) the call that last penalized each token
    private int _call;

    /// <summary>A sampler for rows of <paramref name="vocabSize"/> logits.</summary>
    /// <exception cref="ArgumentOutOfRangeException">vocabSize &lt; 1, or an option out of its
    /// range (<see cref="SamplingOptions.Validate"/>).</exception>
    public Sampler(int vocabSize, SamplingOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        options.Validate();
        VocabSize = vocabSize;
        Options = options;
        _heap = new float[Math.Min(options.TopK, vocabSize)];
        _keys = new float[vocabSize];
        _ids = new int[vocabSize];
        _weights = new double[vocabSize];
        _stamp = options.RepetitionPenalty == 1f ? [] : new int[vocabSize];
    }

    /// <summary>Logits per row.</summary>
    public int VocabSize { get; }

    /// <summary>The options it samples with.</summary>
    public SamplingOptions Options { get; }

    /// <summary>
    /// The next token after <paramref name="history"/> (the sequence so far, prompt included:
    /// the repetition penalty's tokens), drawn with <paramref name="random"/> (unused when
    /// greedy). <paramref name="logits"/> is overwritten by the processed logits.
    /// </summary>
    /// <exception cref="ArgumentException">The row is not <see cref="VocabSize"/> long, or
    /// holds no finite logit.</exception>
    public int Sample(Span<float> logits, ReadOnlySpan<int> history, ref SamplingRandom random)
    {
        int n = Filter(logits, history);
        if (n == 1) return _ids[0];
        // The kept logits are in descending order: _weights[i] = exp(logit_i − logit_0).
        double max = -_keys[0], sum = 0;
        for (int i = 0; i < n; i++) sum += _weights[i] = Math.Exp(-_keys[i] - max);
        double u = random.NextDouble() * sum;
        for (int i = 0; i < n - 1; i++)
        {
            u -= _weights[i];
            if (u < 0) return _ids[i];
        }
        return _ids[n - 1];   // rounding left u ≥ 0 after the last-but-one
    }

    /// <summary>
    /// The tokens <see cref="Sample"/> would draw from after <paramref name="history"/>, by
    /// descending processed logit (one, the argmax, when greedy). The span is the sampler's
    /// scratch: valid until its next call. <paramref name="logits"/> is overwritten as in
    /// <see cref="Sample"/>.
    /// </summary>
    public ReadOnlySpan<int> Candidates(Span<float> logits, ReadOnlySpan<int> history) =>
        _ids.AsSpan(0, Filter(logits, history));

    /// <summary>HF's repetition penalty on <paramref name="logits"/>, in place: each distinct
    /// token t of <paramref name="history"/> once, logit_t / R if &gt; 0, else logit_t · R.
    /// </summary>
    public void ApplyRepetitionPenalty(Span<float> logits, ReadOnlySpan<int> history)
    {
        float penalty = Options.RepetitionPenalty;
        if (penalty == 1f) return;
        if (++_call == int.MaxValue)
        {
            Array.Clear(_stamp);
            _call = 1;
        }
        foreach (int t in history)
        {
            if ((uint)t >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(history), t,
                    $"a token id outside the vocabulary [0, {VocabSize}).");
            if (_stamp[t] == _call) continue;
            _stamp[t] = _call;
            float x = logits[t];
            logits[t] = x > 0 ? x / penalty : x * penalty;
        }
    }

    // The processors in HF's order; returns how many candidates (_ids, _keys) are kept.
    private int Filter(Span<float> logits, ReadOnlySpan<int> history)
    {
        if (logits.Length != VocabSize)
            throw new ArgumentException($"the logits row holds {logits.Length} values; the "
                + $"sampler's vocabulary is {VocabSize}.", nameof(logits));
        ApplyRepetitionPenalty(logits, history);
        if (Options.IsGreedy)
        {
            int best = -1;
            float bestValue = float.NegativeInfinity;
            for (int i = 0; i < logits.Length; i++)
                if (logits[i] > bestValue)
                {
                    bestValue = logits[i];
                    best = i;
                }
            if (best < 0) throw NoFiniteLogit();
            _ids[0] = best;
            _keys[0] = -bestValue;
            return 1;
        }
        float temperature = Options.Temperature;
        if (temperature != 1f)
            for (int i = 0; i < logits.Length; i++) logits[i] /= temperature;

        // Top-k: HF removes logits below the K-th largest, so ties with it stay.
        float threshold = Options.TopK > 0 && Options.TopK < VocabSize
            ? KthLargest(logits) : float.NegativeInfinity;
        int n = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            float x = logits[i];
            if (x >= threshold && x > float.NegativeInfinity)
            {
                _keys[n] = -x;
                _ids[n++] = i;
            }
        }
        if (n == 0) throw NoFiniteLogit();
        _keys.AsSpan(0, n).Sort(_ids.AsSpan(0, n));

        // Top-p: HF drops the ascending prefix whose cumulative probability is ≤ 1 − P; in
        // descending order, token i stays while the mass before it is < P (so ≥ 1 stays).
        if (Options.TopP < 1f && n > 1)
        {
            double max = -_keys[0], sum = 0;
            for (int i = 0; i < n; i++) sum += _weights[i] = Math.Exp(-_keys[i] - max);
            double before = 0, bound = Options.TopP * sum;
            for (int i = 1; i < n; i++)
            {
                before += _weights[i - 1];
                if (before >= bound)
                {
                    n = i;
                    break;
                }
            }
        }
        return n;
    }

    // The K-th largest logit: a K-element min-heap over the row.
    private float KthLargest(ReadOnlySpan<float> logits)
    {
        var heap = _heap.AsSpan();
        int k = heap.Length;
        logits[..k].CopyTo(heap);
        for (int i = k / 2 - 1; i >= 0; i--) SiftDown(heap, i);
        for (int i = k; i < logits.Length; i++)
            if (logits[i] > heap[0])
            {
                heap[0] = logits[i];
                SiftDown(heap, 0);
            }
        return heap[0];
    }

    private static void SiftDown(Span<float> heap, int i)
    {
        while (true)
        {
            int left = 2 * i + 1, smallest = i;
            if (left < heap.Length && heap[left] < heap[smallest]) smallest = left;
            if (left + 1 < heap.Length && heap[left + 1] < heap[smallest]) smallest = left + 1;
            if (smallest == i) return;
            (heap[i], heap[smallest]) = (heap[smallest], heap[i]);
            i = smallest;
        }
    }

    private static ArgumentException NoFiniteLogit() =>
        new("the logits row holds no finite value to choose.", "logits");
}
