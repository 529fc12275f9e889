using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Variants;

/// <summary>
/// A <see cref="HostTable{T}"/> from <see cref="VariantTable{T}.Host"/> keeps its pinned array
/// alive, as documented, while only the table (or an operator holding it) is referenced: after
/// forced collections, with new pinned arrays allocated into the freed space, every element
/// still reads back exactly. The table reads through a raw pointer, so a collected array reads
/// as whatever reuses the memory; in Release builds the JIT promotes the struct's fields to
/// locals and drops a field that is never read, which is how this failed (588 of 600 checks
/// read garbage) before the indexer kept the array reachable. No tolerance: integers.
/// Rounds: each collection is a full blocking GC of the whole test process (gigabytes while
/// the kernel tests run beside it); 60 rounds took 6-7 minutes per test in CI and stalled
/// every other test meanwhile, and 12 rounds still took 3-4 minutes per test (2026-12-02, the
/// collections of a process holding the whole suite's kernels). 3 rounds (9 collections,
/// 9,000 reads per test) fail with certainty at the rate the bug showed (98 % of reads), and
/// the class runs alone (after the parallel tests), where a collection does not have to stop
/// hundreds of accelerator threads.
/// </summary>
[Collection(Kernels.TimingCollection.Name)]
public sealed class TableVariantLifetimeTests
{
    private const int Length = 1000, Rounds = 3;

    [Fact]
    public void HostTableKeepsItsArrayAlive()
    {
        for (int round = 0; round < Rounds; round++)
        {
            var table = new VariantTable<int>(Enumerable.Range(0, Length).ToArray()).Host;
            for (int gc = 0; gc < 3; gc++)
            {
                CollectAndReuse();
                for (int i = 0; i < Length; i++)
                    Assert.True(table[i] == i, $"round {round}, after collection {gc}: table[{i}] = {table[i]}");
            }
        }
    }

    [Fact]
    public void OperatorOverHostTableKeepsItsArrayAlive()
    {
        for (int round = 0; round < Rounds; round++)
        {
            var mask = new DocumentIdMask<HostTable<int>>(
                new VariantTable<int>(Enumerable.Range(0, Length).ToArray()).Host, Length, DocumentIdOrder.NonDecreasing);
            for (int gc = 0; gc < 3; gc++)
            {
                CollectAndReuse();
                for (int q = 0; q < Length; q++)
                    Assert.True(mask.Allows(0, 0, q, q) && !mask.Allows(0, 0, q, (q + 1) % Length),
                        $"round {round}, after collection {gc}: ids differ from 0..{Length - 1} at {q}");
            }
        }
    }

    /// <summary>Full blocking collections, then pinned arrays of the same size filled with -7,
    /// so freed pinned memory is reused with other values.</summary>
    private static void CollectAndReuse()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        for (int j = 0; j < 20; j++) GC.AllocateArray<int>(Length, pinned: true).AsSpan().Fill(-7);
    }
}
