using Managed.Kernels.Devices;

namespace Managed.Models;

/// <summary>
/// A causal language model with the KV caches of up to <see cref="MaxBatch"/> sequences: the
/// surface that generation, perplexity and the front end use. Token ids in, fp32 logits out;
/// tokenizers live outside the library. Sequences are numbered 0 .. MaxBatch - 1 and each holds
/// the tokens appended to it since the last <see cref="Reset"/>.
/// </summary>
public interface ICausalModel : IDisposable
{
    /// <summary>The configuration the weights were loaded with.</summary>
    ModelConfig Config { get; }

    /// <summary>The device the model runs on.</summary>
    ComputeDevice Device { get; }

    /// <summary>Logits per token (the vocabulary size).</summary>
    int VocabSize { get; }

    /// <summary>Most sequences held at once.</summary>
    int MaxBatch { get; }

    /// <summary>Most tokens one sequence can hold.</summary>
    int MaxLength { get; }

    /// <summary>Tokens sequence <paramref name="sequence"/> holds.</summary>
    int Length(int sequence);

    /// <summary>Empties every sequence.</summary>
    void Reset();

    /// <summary>
    /// Appends <paramref name="tokens"/> to one sequence and runs them through the model
    /// (prefill when there are many). <paramref name="logits"/> receives the logits of every
    /// new token ([tokens, vocab]) or, when it holds one row only, of the last one.
    /// </summary>
    void Append(int sequence, ReadOnlySpan<int> tokens, Span<float> logits);

    /// <summary>
    /// One decode step for sequences 0 .. tokens.Length - 1 together: token b is appended to
    /// sequence b, and row b of <paramref name="logits"/> ([batch, vocab]) receives its logits.
    /// </summary>
    void Step(ReadOnlySpan<int> tokens, Span<float> logits);
}
