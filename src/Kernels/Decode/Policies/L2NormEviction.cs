using System.Runtime.InteropServices;

namespace Managed.Kernels.Decode.Policies;

/// <summary>
/// L2-norm KV compression (catalog K1; Devoto et al., <i>A Simple and Effective L_2
/// Norm-Based Strategy for KV Cache Compression</i>): keys of low L2 norm draw high attention
/// during decoding, so each head keeps the <see cref="Budget"/> rows whose keys have the
/// lowest ‖k‖₂ and evicts the highest-norm ones (ties: the earlier row is kept). No attention
/// scores are needed. The paper's per-layer choices (it leaves the first layers uncompressed)
/// belong to the caller: a cache is one layer. A head's compensation row, if any, is kept and
/// counts toward the budget; a key with a NaN norm is evicted first (as if its norm were
/// infinite). On an ILGPU device the norms are computed there; only they travel.
/// </summary>
public readonly struct L2NormEviction : IKvPolicy
{
    /// <summary>Keep at most <paramref name="budget"/> &gt;= 1 rows per head.</summary>
    /// <exception cref="ArgumentOutOfRangeException">budget is not positive.</exception>
    public L2NormEviction(int budget)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budget);
        Budget = budget;
    }

    /// <summary>Rows each head keeps at most.</summary>
    public int Budget { get; }

    /// <summary>Each head holding more than Budget rows keeps the Budget of lowest key norm.
    /// </summary>
    /// <exception cref="ArgumentNullException">cache is null.</exception>
    /// <exception cref="ArgumentException">The policy is a default instance.</exception>
    public void Apply<TStorage>(KvCache<TStorage> cache) where TStorage : unmanaged
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (Budget == 0) throw new ArgumentException("A default L2NormEviction has no budget.");
        bool over = false;
        for (int b = 0; b < cache.Batch; b++)
            for (int h = 0; h < cache.KvHeads; h++) over |= cache.Kept(b, h) > Budget;
        if (!over) return;
        var (norms, stride) = cache.KeySquaredNorms();
        var counts = new int[cache.Batch * cache.KvHeads];
        var slots = new List<int>();
        for (int b = 0; b < cache.Batch; b++)
            for (int h = 0; h < cache.KvHeads; h++)
            {
                int bh = b * cache.KvHeads + h, n = cache.Kept(b, h);
                int compensation = cache.Compensation(b, h).Slot;
                var order = Enumerable.Range(0, n);
                if (n > Budget)
                {
                    long at = (long)bh * stride;
                    // The compensation row first, then ascending norm, then slot (stable).
                    order = order.OrderBy(j => j == compensation ? 0 : 1)
                        .ThenBy(j => float.IsNaN(norms[at + j]) ? float.PositiveInfinity
                            : norms[at + j]).Take(Budget).Order();
                }
                foreach (int j in order) slots.Add(j);
                counts[bh] = Math.Min(n, Budget);
            }
        cache.Retain(counts, CollectionsMarshal.AsSpan(slots));
    }
}
