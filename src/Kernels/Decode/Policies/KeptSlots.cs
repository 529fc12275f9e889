using System.Runtime.InteropServices;

namespace Managed.Kernels.Decode.Policies;

/// <summary>Builds the per-head slot lists of <see cref="KvCache{TStorage}.Retain"/>.</summary>
internal static class KeptSlots
{
    /// <summary>Each head (b, h) keeps its first <paramref name="sinks"/> slots, its last
    /// recent(b, h) slots (int.MaxValue: all) and its compensation row, if any.</summary>
    public static void SinksAndRecent<TStorage>(KvCache<TStorage> cache, int sinks,
        Func<int, int, int> recent, bool compensate) where TStorage : unmanaged
    {
        var counts = new int[cache.Batch * cache.KvHeads];
        var slots = new List<int>();
        for (int b = 0; b < cache.Batch; b++)
            for (int h = 0; h < cache.KvHeads; h++)
            {
                int n = cache.Kept(b, h), compensation = cache.Compensation(b, h).Slot;
                long firstRecent = (long)n - recent(b, h);
                for (int j = 0; j < n; j++)
                    if (j < sinks || j >= firstRecent || j == compensation)
                    {
                        slots.Add(j);
                        counts[b * cache.KvHeads + h]++;
                    }
            }
        cache.Retain(counts, CollectionsMarshal.AsSpan(slots), compensate);
    }

    /// <summary>A copy of a per-KV-head flag array, checked against the cache.</summary>
    public static void CheckHeads<TStorage>(KvCache<TStorage> cache, bool[] perHead,
        string name) where TStorage : unmanaged
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (perHead.Length != cache.KvHeads)
            throw new ArgumentException($"{name} has {perHead.Length} entries; the cache has "
                + $"{cache.KvHeads} KV heads.", nameof(cache));
    }
}
