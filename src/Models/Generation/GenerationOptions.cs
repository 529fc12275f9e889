namespace Managed.Models.Generation;

/// <summary>What a <see cref="Generator"/> does with each prompt.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens generated per prompt (the stop token included); ≥ 0.</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>How each token is chosen (greedy by default).</summary>
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Greedy;

    /// <summary>Token ids that end a sequence, besides the config's eos ids (when
    /// <see cref="StopAtEos"/>). The stop token is generated, streamed and returned, as HF's
    /// <c>generate</c> returns its eos.</summary>
    public IReadOnlyList<int> StopTokens { get; init; } = [];

    /// <summary>Whether the model config's eos ids (<see cref="ModelConfig.EosTokenIds"/>) end
    /// a sequence too (default true).</summary>
    public bool StopAtEos { get; init; } = true;
}

/// <summary>Why a sequence stopped.</summary>
public enum FinishReason : byte
{
    /// <summary>It generated a stop token (an eos or one of
    /// <see cref="GenerationOptions.StopTokens"/>), its last token.</summary>
    StopToken,

    /// <summary>It generated <see cref="GenerationOptions.MaxNewTokens"/> tokens.</summary>
    MaxNewTokens,

    /// <summary>The model's sequence is full (<see cref="ICausalModel.MaxLength"/> tokens,
    /// the last one generated not appended).</summary>
    MaxLength,
}

/// <summary>The tokens generated after one prompt (the prompt not included) and why it
/// stopped.</summary>
/// <param name="Tokens">The generated ids, in order; a stop token is the last.</param>
/// <param name="Reason">Why generation stopped.</param>
public sealed record GenerationResult(int[] Tokens, FinishReason Reason);

/// <summary>Called once per generated token, as soon as it is chosen: the prompt's index in
/// the batch and the token id. Within one decode step, prompts come in index order.</summary>
public delegate void TokenCallback(int sequence, int token);
