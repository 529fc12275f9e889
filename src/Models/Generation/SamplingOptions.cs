namespace Managed.Models.Generation;

/// <summary>
/// How the next token is chosen from a row of logits, with Hugging Face <c>generate</c>'s
/// meanings and order: repetition penalty, then temperature, then top-k, then top-p, then a
/// draw from the softmax of what is left. <see cref="Temperature"/> = 0 is greedy decoding
/// (argmax after the repetition penalty, as HF's <c>do_sample=False</c>).
/// </summary>
/// <param name="Temperature">logits / T before sampling; 0 = greedy (top-k, top-p and the seed
/// are then unused); must be finite and ≥ 0.</param>
/// <param name="TopK">Keep the K largest logits (and any tied with the K-th); 0 = off.</param>
/// <param name="TopP">Keep the smallest set of largest probabilities whose mass is ≥ P
/// (nucleus sampling); 1 = off; must be in (0, 1].</param>
/// <param name="RepetitionPenalty">For every distinct token already in the sequence (prompt
/// included): a logit &gt; 0 is divided by R, a logit &lt; 0 multiplied by R (HF's
/// <c>RepetitionPenaltyLogitsProcessor</c>); 1 = off; must be finite and &gt; 0.</param>
/// <param name="Seed">Seeds <see cref="SamplingRandom"/>; sequence b of a batch draws from
/// the stream of seed + b.</param>
public readonly record struct SamplingOptions(float Temperature = 1f, int TopK = 0,
    float TopP = 1f, float RepetitionPenalty = 1f, ulong Seed = 0)
{
    /// <summary>Greedy decoding: argmax, no penalty.</summary>
    public static SamplingOptions Greedy => new(Temperature: 0f);

    /// <summary>True when <see cref="Temperature"/> is 0: argmax, no draw.</summary>
    public bool IsGreedy => Temperature == 0f;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first value out of
    /// its range.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0f) || float.IsPositiveInfinity(Temperature))
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature,
                "the temperature must be finite and >= 0 (0 = greedy).");
        if (TopK < 0)
            throw new ArgumentOutOfRangeException(nameof(TopK), TopK,
                "top-k must be >= 0 (0 = off).");
        if (!(TopP > 0f && TopP <= 1f))
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP,
                "top-p must be in (0, 1] (1 = off).");
        if (!(RepetitionPenalty > 0f) || float.IsPositiveInfinity(RepetitionPenalty))
            throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), RepetitionPenalty,
                "the repetition penalty must be finite and > 0 (1 = off).");
    }
}
