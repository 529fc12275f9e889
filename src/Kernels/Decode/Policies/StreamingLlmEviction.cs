namespace Managed.Kernels.Decode.Policies;

/// <summary>
/// StreamingLLM eviction (Xiao et al., <i>Efficient Streaming Language Models with Attention
/// Sinks</i>): keep the first <see cref="Sinks"/> tokens (attention sinks) and the most recent
/// <see cref="Window"/> tokens of every head, and drop the middle from the cache. Kept rows
/// keep their original positions, so masks and score modifiers see where each token was
/// (the paper re-numbers positions inside the cache for its RoPE; here keys are cached as
/// given and positions stay the tokens' own). A compensation row, if a head has one, is kept.
/// </summary>
public readonly struct StreamingLlmEviction : IKvPolicy
{
    /// <summary>Keep <paramref name="sinks"/> &gt;= 0 first and <paramref name="window"/>
    /// &gt;= 1 most recent rows per head.</summary>
    /// <exception cref="ArgumentOutOfRangeException">sinks is negative or window is not
    /// positive.</exception>
    public StreamingLlmEviction(int sinks, int window)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sinks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(window);
        (Sinks, Window) = (sinks, window);
    }

    /// <summary>Initial tokens kept (attention sinks).</summary>
    public int Sinks { get; }

    /// <summary>Most recent tokens kept.</summary>
    public int Window { get; }

    /// <summary>Every head keeps its first Sinks and last Window rows.</summary>
    /// <exception cref="ArgumentNullException">cache is null.</exception>
    public void Apply<TStorage>(KvCache<TStorage> cache) where TStorage : unmanaged
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (Window == 0)
            throw new ArgumentException("A default StreamingLlmEviction has no window.");
        int window = Window;
        KeptSlots.SinksAndRecent(cache, Sinks, (_, _) => window, compensate: false);
    }
}
