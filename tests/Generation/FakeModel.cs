using Managed.Kernels.Devices;
using Managed.Models;

namespace Managed.Tests.Generation;

/// <summary>
/// A deterministic stand-in for a transformer: the logits after the token at position p of a
/// sequence are <see cref="Row"/>(token, p), a hash table over (token, p mod period, vocab
/// entry); period 1 is a bigram model. It checks the <see cref="ICausalModel"/> contract
/// (sequence indices, lengths, span sizes) and records its calls.
/// </summary>
public sealed class FakeModel : ICausalModel
{
    private readonly List<int>[] _sequences;

    /// <summary>A fake with <paramref name="vocab"/> ids, eos <paramref name="eos"/> (none if
    /// negative), <paramref name="maxBatch"/> sequences of up to
    /// <paramref name="maxLength"/> tokens; logits repeat with position every
    /// <paramref name="period"/> tokens.</summary>
    public FakeModel(int vocab = 50, int eos = -1, int maxBatch = 8, int maxLength = 256,
        int period = 3)
    {
        Config = ModelConfig.Parse($$"""
            {"model_type": "llama", "vocab_size": {{vocab}}, "hidden_size": 8,
             "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
             "max_position_embeddings": {{maxLength}},
             "eos_token_id": {{(eos >= 0 ? eos.ToString() : "null")}}}
            """, "fake/config.json");
        VocabSize = vocab;
        MaxBatch = maxBatch;
        MaxLength = maxLength;
        Period = period;
        _sequences = [.. Enumerable.Range(0, maxBatch).Select(_ => new List<int>())];
    }

    /// <summary>Positions after which the logits repeat.</summary>
    public int Period { get; }

    /// <summary>The batch size of every <see cref="Step"/> call, in order.</summary>
    public List<int> Steps { get; } = [];

    /// <summary>(sequence, tokens) of every <see cref="Append"/> call, in order.</summary>
    public List<(int Sequence, int[] Tokens)> Appends { get; } = [];

    /// <summary>True once disposed.</summary>
    public bool Disposed { get; private set; }

    /// <inheritdoc/>
    public ModelConfig Config { get; }

    /// <inheritdoc/>
    public ComputeDevice Device => ComputeDevice.Host;

    /// <inheritdoc/>
    public int VocabSize { get; }

    /// <inheritdoc/>
    public int MaxBatch { get; }

    /// <inheritdoc/>
    public int MaxLength { get; }

    /// <summary>The tokens sequence <paramref name="sequence"/> holds.</summary>
    public IReadOnlyList<int> Tokens(int sequence) => _sequences[sequence];

    /// <inheritdoc/>
    public int Length(int sequence) => _sequences[sequence].Count;

    /// <inheritdoc/>
    public void Reset()
    {
        foreach (var s in _sequences) s.Clear();
    }

    /// <summary>The logits after <paramref name="token"/> at position
    /// <paramref name="position"/> (0-based), into <paramref name="row"/> (vocab).</summary>
    public void Row(int token, int position, Span<float> row)
    {
        for (int v = 0; v < VocabSize; v++)
        {
            uint h = (uint)(token * 7919 + v * 104729 + position % Period * 1299709) * 2654435761u;
            h ^= h >> 15;
            h *= 2246822519u;
            h ^= h >> 13;
            row[v] = (h % 10007) / 10007f * 8f - 4f;   // [-4, 4)
        }
    }

    /// <inheritdoc/>
    public void Append(int sequence, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)sequence, (uint)MaxBatch);
        if (tokens.IsEmpty) throw new ArgumentException("no tokens");
        bool all = logits.Length == tokens.Length * VocabSize;
        if (!all && logits.Length != VocabSize)
            throw new ArgumentException($"logits {logits.Length} for {tokens.Length} tokens");
        var s = _sequences[sequence];
        if (s.Count + tokens.Length > MaxLength)
            throw new InvalidOperationException($"sequence {sequence} overflows {MaxLength}");
        Appends.Add((sequence, tokens.ToArray()));
        for (int i = 0; i < tokens.Length; i++)
        {
            CheckToken(tokens[i]);
            if (all) Row(tokens[i], s.Count, logits.Slice(i * VocabSize, VocabSize));
            else if (i == tokens.Length - 1) Row(tokens[i], s.Count, logits);
            s.Add(tokens[i]);
        }
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<int> tokens, Span<float> logits)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        if (tokens.IsEmpty || tokens.Length > MaxBatch)
            throw new ArgumentException($"batch {tokens.Length}");
        if (logits.Length != tokens.Length * VocabSize)
            throw new ArgumentException($"logits {logits.Length} for batch {tokens.Length}");
        Steps.Add(tokens.Length);
        for (int b = 0; b < tokens.Length; b++)
        {
            var s = _sequences[b];
            if (s.Count == 0) throw new InvalidOperationException($"step on empty sequence {b}");
            if (s.Count + 1 > MaxLength)
                throw new InvalidOperationException($"sequence {b} overflows {MaxLength}");
            CheckToken(tokens[b]);
            Row(tokens[b], s.Count, logits.Slice(b * VocabSize, VocabSize));
            s.Add(tokens[b]);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Disposed = true;

    private void CheckToken(int t)
    {
        if ((uint)t >= (uint)VocabSize) throw new ArgumentOutOfRangeException(nameof(t), t, "");
    }
}
