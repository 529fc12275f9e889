namespace Managed.Kernels.LinearAttention;

/// <summary>Per-call options of <see cref="ChunkedLinearAttention"/>.</summary>
public readonly record struct LinearAttentionOptions
{
    /// <summary>Token t reads keys 0..t (true) or all keys (false: one global state).</summary>
    public bool Causal { get; init; }

    /// <summary>Divide each output by phi(q_t) . z_t, z_t the (decayed) sum of the mapped keys
    /// it reads: the weights of a row then sum to 1 (an output whose sum is 0 is 0). False:
    /// the raw sum, as Lightning Attention and RetNet compute it.</summary>
    public bool Normalize { get; init; }

    /// <summary>Tokens per chunk (the quadratic form inside a chunk, the state across chunks);
    /// null: the device's tuning. Results do not depend on it beyond rounding.</summary>
    public int? ChunkSize { get; init; }

    /// <summary>Host threads; null: all processors.</summary>
    public int? MaxDegreeOfParallelism { get; init; }
}
