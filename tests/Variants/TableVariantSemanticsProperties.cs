using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit.Sdk;

namespace Managed.Tests.Variants;

/// <summary>
/// What each table operator computes, against its documented formula written from the raw
/// data (ids, parents rather than ancestor bits, layout entries, flags, table entries), on
/// every pair of a range of positions (negative and past-the-table query positions, far-apart
/// positions for the scores). The kernel and reference tests compare the operators with
/// themselves; these pin the operators to their documentation. Masks are exact; the score
/// modifiers compute one fp32 add or multiply of the same operands as the formula, so they
/// must match bit for bit.
/// </summary>
public sealed class TableVariantSemanticsProperties
{
    private static Arbitrary<int> Seeds { get; } = AttentionGen.Seed.ToArbitrary();

    /// <summary>ids[b, q] == ids[b, k] for q in [0, seqK); nothing outside; sorted or not.</summary>
    [Property(MaxTest = 50)]
    public Property DocumentIdsCompareTheIdsOfQueryAndKey() =>
        Prop.ForAll(Seeds, seed =>
        {
            var r = new Random(seed);
            int batch = r.Next(1, 4), seqK = r.Next(1, 150);
            bool sorted = r.Next(2) == 0;
            var ids = sorted ? TableData.SortedIds(r, batch, seqK) : TableData.UnsortedIds(r, batch, seqK);
            var mask = new DocumentIdMask<HostTable<int>>(new VariantTable<int>(ids).Host, seqK, DocumentIdOrders.Order(sorted));
            for (int b = 0; b < batch; b++)
                for (int q = -20; q < seqK + 20; q++)
                    for (int k = 0; k < seqK; k++)
                        Expect(mask.Allows(b, 0, q, k), q >= 0 && q < seqK && ids[b * seqK + q] == ids[b * seqK + k],
                            $"b={b} q={q} k={k}, ids {TableData.Show(ids)} seqK {seqK}");
        });

    /// <summary>
    /// Prefix rows are causal; node i (position prefix + i) sees the whole prefix and the
    /// nodes on its path to the root (walked through the parents, not the ancestor bits, so
    /// TreeMasks.Ancestors is checked too, across 32-bit words: up to 100 nodes); positions
    /// before 0 or past the tree see nothing.
    /// </summary>
    [Property(MaxTest = 60)]
    public Property TreeNodesSeeThePrefixAndTheirAncestors() =>
        Prop.ForAll(Seeds, seed =>
        {
            var r = new Random(seed);
            int prefix = r.Next(2) == 0 ? 0 : r.Next(0, 40), nodes = r.Next(1, 101);
            var parents = TableData.Parents(r, nodes);
            var mask = new TreeMask<HostTable<int>>(new VariantTable<int>(TreeMasks.Ancestors(parents)).Host, prefix, nodes);
            int n = prefix + nodes;
            for (int q = -20; q < n + 20; q++)
                for (int k = 0; k < n; k++)
                {
                    bool expected = q >= 0 && q < n && k <= q
                        && (k < prefix || IsOnPath(parents, k - prefix, q - prefix));
                    Expect(mask.Allows(0, 0, q, k), expected, $"q={q} k={k}, prefix {prefix} parents [{string.Join(",", parents)}]");
                }
        });

    /// <summary>Block (h or 0, q / blockQ, k / blockK): 2 allows, 1 asks the inner mask, 0
    /// denies; positions outside the blocks see nothing; layout heads 1 serve every head.</summary>
    [Property(MaxTest = 50)]
    public Property BlockMaskReadsItsLayout() =>
        Prop.ForAll(Seeds, seed =>
        {
            var r = new Random(seed);
            int heads = r.Next(2) == 0 ? 1 : r.Next(2, 5), blockQ = TableData.BlockSize(r), blockK = TableData.BlockSize(r);
            int qBlocks = r.Next(1, 150) / blockQ + 1, kBlocks = r.Next(1, 150) / blockK + 1;
            var layout = TableData.Layout(r, heads * qBlocks * kBlocks, boolean: false);
            var inner = new SlidingWindowMask(r.Next(0, 30), r.Next(0, 30));
            var mask = new BlockMask<SlidingWindowMask, HostTable<int>>(new VariantTable<int>(layout).Host, inner,
                heads, qBlocks, kBlocks, blockQ, blockK);
            for (int h = 0; h < (heads == 1 ? 3 : heads); h++) // the call's heads
                for (int q = -20; q < qBlocks * blockQ + 20; q++)
                    for (int k = 0; k < kBlocks * blockK + 5; k++)
                    {
                        bool inside = q >= 0 && q < qBlocks * blockQ && k < kBlocks * blockK;
                        int kind = inside ? layout[((heads == 1 ? 0 : h) * qBlocks + q / blockQ) * kBlocks + k / blockK] : 0;
                        bool expected = kind == 2 || kind == 1 && inner.Allows(0, h, q, k);
                        Expect(mask.Allows(0, h, q, k), expected,
                            $"h={h} q={q} k={k}, heads {heads}, {qBlocks}x{kBlocks} blocks of {blockQ}x{blockK}, layout {TableData.Show(layout)}");
                    }
        });

    /// <summary>Head h follows the set mask where flags[h] != 0, else the clear mask.</summary>
    [Property(MaxTest = 60)]
    public Property HeadSelectFollowsEachHeadsFlag() =>
        Prop.ForAll(Seeds, seed =>
        {
            var r = new Random(seed);
            var flags = Enumerable.Range(0, r.Next(1, 9)).Select(_ => r.Next(3) == 0 ? 0 : r.Next(-3, 4)).ToArray();
            var clear = new SinkWindowMask(r.Next(0, 6), r.Next(1, 40));
            var mask = new HeadSelectMask<CausalMask, SinkWindowMask, HostTable<int>>(new VariantTable<int>(flags).Host, default, clear);
            for (int h = 0; h < flags.Length; h++)
                for (int q = -20; q < 150; q++)
                    for (int k = 0; k < 150; k++)
                        Expect(mask.Allows(0, h, q, k), flags[h] != 0 ? k <= q : clear.Allows(0, h, q, k),
                            $"h={h} q={q} k={k}, flags [{string.Join(",", flags)}]");
        });

    /// <summary>s + bias[h or 0, clamp(k - q, -R, R) + R], the distance taken exactly (far
    /// positions included), layout heads 1 shared.</summary>
    [Property(MaxTest = 100)]
    public Property RelativeBiasAddsTheClampedDistancesEntry() =>
        Prop.ForAll(Seeds, seed =>
        {
            var r = new Random(seed);
            int heads = r.Next(2) == 0 ? 1 : r.Next(2, 9), radius = r.Next(0, 60), callHeads = heads == 1 ? 8 : heads;
            var bias = TableData.Uniform(r, heads * (2 * radius + 1), -5f, 5f);
            var score = new RelativeBiasScore<HostTable<float>>(new VariantTable<float>(bias).Host, heads, radius);
            for (int i = 0; i < 2000; i++)
            {
                int h = r.Next(callHeads);
                int q = r.Next(5) == 0 ? new[] { int.MinValue, int.MaxValue, -1, 0 }[r.Next(4)] : r.Next(-300, 300);
                int k = r.Next(5) == 0 ? new[] { 0, int.MaxValue }[r.Next(2)] : r.Next(0, 600);
                float s = (float)(100 * r.NextDouble() - 50);
                long d = Math.Clamp((long)k - q, -radius, radius);
                float expected = s + bias[(heads == 1 ? 0 : h) * (2 * radius + 1) + (int)d + radius];
                float actual = score.Apply(s, r.Next(3), h, q, k);
                if (BitConverter.SingleToInt32Bits(actual) != BitConverter.SingleToInt32Bits(expected))
                    throw new XunitException($"h={h} q={q} k={k} s={s:R}: {actual:R}, expected {expected:R}; heads {heads} radius {radius}");
            }
        });

    /// <summary>tau[b, h, clamp(q, 0, positions - 1)] s: positions outside the table use the
    /// nearest entry.</summary>
    [Property(MaxTest = 100)]
    public Property QueryTemperatureScalesByTheQuerysEntry() =>
        Prop.ForAll(Seeds, seed =>
        {
            var r = new Random(seed);
            int batch = r.Next(1, 4), heads = r.Next(1, 9), positions = r.Next(1, 200);
            var tau = TableData.Uniform(r, batch * heads * positions, 0.1f, 4f);
            var score = new QueryTemperatureScore<HostTable<float>>(new VariantTable<float>(tau).Host, heads, positions);
            for (int i = 0; i < 2000; i++)
            {
                int b = r.Next(batch), h = r.Next(heads);
                int q = r.Next(5) == 0 ? new[] { int.MinValue, int.MaxValue, -1, positions }[r.Next(4)] : r.Next(-50, positions + 50);
                float s = (float)(100 * r.NextDouble() - 50);
                float expected = tau[(b * heads + h) * positions + Math.Clamp(q, 0, positions - 1)] * s;
                float actual = score.Apply(s, b, h, q, r.Next(0, 500));
                if (BitConverter.SingleToInt32Bits(actual) != BitConverter.SingleToInt32Bits(expected))
                    throw new XunitException($"b={b} h={h} q={q} s={s:R}: {actual:R}, expected {expected:R}; batch {batch} heads {heads} positions {positions}");
            }
        });

    private static bool IsOnPath(int[] parents, int ancestor, int node)
    {
        for (int j = node; j >= 0; j = parents[j])
            if (j == ancestor) return true;
        return false;
    }

    private static void Expect(bool actual, bool expected, string context)
    {
        if (actual != expected) throw new XunitException($"Allows is {actual}, documented {expected}: {context}");
    }
}
