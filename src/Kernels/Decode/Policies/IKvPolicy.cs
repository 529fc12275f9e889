namespace Managed.Kernels.Decode.Policies;

/// <summary>
/// A KV-cache policy: decides on the host, from positions and metadata, which rows each
/// (sequence, KV head) of a <see cref="KvCache{TStorage}"/> keeps, and applies it with
/// <see cref="KvCache{TStorage}.Retain"/>. Per KV head, not per query head: the query heads
/// sharing a KV head (GQA) share its cache rows. A policy with nothing to evict changes
/// nothing, so decode afterwards is bit-identical to full attention.
/// </summary>
public interface IKvPolicy
{
    /// <summary>Evicts from <paramref name="cache"/> the rows the policy drops.</summary>
    /// <exception cref="ArgumentException">The policy does not fit the cache (for example a
    /// per-head setting for another number of KV heads); nothing is changed.</exception>
    void Apply<TStorage>(KvCache<TStorage> cache) where TStorage : unmanaged;
}
