using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.Kernels;

/// <summary>
/// Identities of the table operators, each checked twice: element-wise (the predicates or
/// modifiers agree on every pair of a range of positions, negative query positions included
/// where both sides define them) and through the host kernel against the plain operator, with
/// the tight tolerance of <see cref="MaskIdentityKernelTests"/> (atol = rtol = 1e-6): the two
/// runs compute the same sums, but tile classes, and so the order of the fp32 additions,
/// may differ; one rounding per key of a few hundred stays near 1e-7.
/// </summary>
[Collection(HostBackendCollection.Name)]
public sealed class TableVariantIdentityTests(HostBackendFixture fixture)
{
    private static readonly Tolerance Tight = new(1e-6, 1e-6);

    private TestDevice Backend => fixture.Backend;

    private static Arbitrary<AttentionCase> Cases { get; } = AttentionGen.Cases(CaseLimits.Host).ToArbitrary();

    /// <summary>
    /// A chain (parent[i] = i - 1) after a prefix of 0 or of a random length is the causal
    /// mask on every position before seqK (positions at or past seqK, which only top-left
    /// calls with seqQ &gt; seqK make, are outside the tree and see nothing, so such calls are
    /// cut to seqQ = seqK).
    /// </summary>
    [Property(MaxTest = 40)]
    public Property ChainTreeIsCausal() =>
        Prop.ForAll(Cases, c =>
        {
            c = InsideKeys(c);
            int n = c.Shape.SeqK;
            foreach (int prefix in new[] { 0, c.Random(1).Next(0, n) })
            {
                var ancestors = TreeMasks.Ancestors(Enumerable.Range(0, n - prefix).Select(i => i - 1).ToArray());
                var tree = new TreeMask<HostTable<int>>(new VariantTable<int>(ancestors).Host, prefix, n - prefix);
                string context = $"chain of {n - prefix} after prefix {prefix}: {c}";
                AssertSameMask(tree, default(CausalMask), 1, 1, -40, n, n, context);
                AssertSameRun(TableOps.Tree(ancestors, prefix, n - prefix).Run(Backend, c),
                    AttentionRun.Run(Backend, c.Shape, c.Query, c.Key, c.Value, default(NoScore), default(CausalMask), c.Options),
                    context);
            }
        });

    /// <summary>
    /// Medusa's tree: with seqQ = seqK = prefix + nodes, the row of node i is causal attention
    /// over the prefix keys followed by the keys of i's root-to-node path (the node's query,
    /// the last position, sees all of them), run as its own call on the extracted keys and
    /// values; prefix rows are the rows of plain causal attention. Random trees (parent[i]
    /// uniform in [-1, i)) of 1..200 nodes after a prefix of 0 or of a random length.
    /// </summary>
    [Property(MaxTest = 30)]
    public Property TreeNodeRowIsCausalAttentionOverItsPath() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape with { SeqQ = c.Shape.SeqK };
            c = c with { Shape = s };
            var r = c.Random(2);
            int prefix = r.Next(3) == 0 ? 0 : r.Next(0, s.SeqK), nodes = s.SeqK - prefix;
            var parents = TableData.Parents(r, nodes);
            var op = TableOps.Tree(TreeMasks.Ancestors(parents), prefix, nodes);
            string context = $"prefix {prefix} parents [{string.Join(",", parents)}]: {c}";
            var result = op.Run(Backend, c);

            var causal = AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore), default(CausalMask), c.Options);
            var rows = Enumerable.Range(0, prefix).ToArray();
            AssertSameRun(Rows(result, s, rows), Rows(causal, s, rows), $"prefix rows; {context}");

            for (int i = 0; i < nodes; i++)
            {
                var path = new List<int>();
                for (int j = i; j >= 0; j = parents[j]) path.Add(prefix + j);
                path.Reverse();
                var keys = Enumerable.Range(0, prefix).Concat(path).ToArray();
                var sub = new AttentionShape(s.Batch, s.Heads, s.KvHeads, 1, keys.Length, s.HeadDim, s.ValueDim);
                var expected = AttentionRun.Run(Backend, sub, Gather(c.Query, s.Batch * s.Heads, s.SeqQ, s.HeadDim, [prefix + i]),
                    Gather(c.Key, s.Batch * s.KvHeads, s.SeqK, s.HeadDim, keys),
                    Gather(c.Value, s.Batch * s.KvHeads, s.SeqK, s.ValueDim, keys),
                    default(NoScore), default(CausalMask), c.Options with { Alignment = QueryAlignment.BottomRight });
                AssertSameRun(Rows(result, s, [prefix + i]), expected, $"node {i}, keys [{string.Join(",", keys)}]; {context}");
            }
        });

    /// <summary>
    /// HeadSelectMask with every flag set (random nonzero values) is its set mask, CausalMask,
    /// and with every flag clear its clear mask, a random sink window: element-wise, in
    /// Classify on the kernel's tilings (it delegates, so exactly), and through the kernel.
    /// </summary>
    [Property(MaxTest = 40)]
    public Property HeadSelectWithUniformFlagsIsThatMask() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            var r = c.Random(3);
            var sink = new SinkWindowMask(r.Next(0, 8), r.Next(1, 64));
            var set = Enumerable.Range(0, s.Heads).Select(_ => r.Next(1, 100) * (r.Next(2) == 0 ? 1 : -1)).ToArray();
            var clear = new int[s.Heads];
            string context = $"{sink.Sinks} sinks, window {sink.Window}, flags [{string.Join(",", set)}]: {c}";
            int n = Math.Max(s.SeqQ, s.SeqK);

            var allSet = new HeadSelectMask<CausalMask, SinkWindowMask, HostTable<int>>(new VariantTable<int>(set).Host, default, sink);
            AssertSameMask(allSet, default(CausalMask), 1, s.Heads, -40, n + 40, s.SeqK, context);
            AssertSameClassify(allSet, default(CausalMask), s.Heads, -40, n + 40, s.SeqK, context);
            AssertSameRun(TableOps.HeadSelect(set, default(CausalMask), sink).Run(Backend, c),
                AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore), default(CausalMask), c.Options), context);

            var allClear = new HeadSelectMask<CausalMask, SinkWindowMask, HostTable<int>>(new VariantTable<int>(clear).Host, default, sink);
            AssertSameMask(allClear, sink, 1, s.Heads, -40, n + 40, s.SeqK, context);
            AssertSameClassify(allClear, sink, s.Heads, -40, n + 40, s.SeqK, context);
            AssertSameRun(TableOps.HeadSelect(clear, default(CausalMask), sink).Run(Backend, c),
                AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore), sink, c.Options), context);
        });

    /// <summary>
    /// A BlockMask over BlockMasks.Layout(mask) with the same mask inside is the mask on the
    /// layout's positions [0, max(seqQ, seqK)) x keys [0, seqK), for every head; masks: a
    /// sliding window, causal, a sink window (layout heads 1 or all) and DuoAttention's
    /// per-head mask (layout heads all); blocks of any size, most not dividing the kernel's
    /// tiles. The kernel runs it on calls whose positions are not negative (bottom-right calls
    /// with seqQ &gt; seqK go top-left), as the layout starts at position 0.
    /// </summary>
    [Property(MaxTest = 60)]
    public Property BlockLayoutOfMaskWithTheMaskInsideIsTheMask() =>
        Prop.ForAll(Cases, c =>
        {
            if (c.Alignment == QueryAlignment.BottomRight && c.Shape.SeqQ > c.Shape.SeqK)
                c = c with { Alignment = QueryAlignment.TopLeft };
            var r = c.Random(4);
            switch (r.Next(4))
            {
                case 0: AssertLayoutIsMask(c, new SlidingWindowMask(r.Next(0, 60), r.Next(0, 60)), r, perHead: false); break;
                case 1: AssertLayoutIsMask(c, default(CausalMask), r, perHead: false); break;
                case 2: AssertLayoutIsMask(c, new SinkWindowMask(r.Next(0, 8), r.Next(1, 64)), r, perHead: false); break;
                default: AssertLayoutIsMask(c, new DuoAttentionMask((ulong)r.NextInt64(), r.Next(0, 8), r.Next(1, 64)), r, perHead: true); break;
            }
        });

    /// <summary>
    /// A boolean layout (0 / 2) with NoMask inside is the dense predicate materialized from the
    /// layout (block (h, q / blockQ, k / blockK) is 2), for every head, query positions from
    /// -40 to 40 past the layout and keys over the layout: element-wise and through the kernel
    /// (against a test mask that reads the dense array and classifies every tile Partial).
    /// </summary>
    [Property(MaxTest = 60)]
    public Property BooleanLayoutIsTheDensePredicate() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            var r = c.Random(5);
            int blockQ = TableData.BlockSize(r), blockK = TableData.BlockSize(r);
            int positions = r.Next(4) == 0 ? r.Next(1, s.SeqQ + s.SeqK) : Math.Max(s.SeqQ, s.SeqK);
            int qBlocks = (positions + blockQ - 1) / blockQ, kBlocks = (s.SeqK + blockK - 1) / blockK + r.Next(2);
            int heads = r.Next(2) == 0 ? 1 : s.Heads;
            var layout = TableData.Layout(r, heads * qBlocks * kBlocks, boolean: true);
            var dense = DenseTestMask.FromLayout(layout, heads, qBlocks, kBlocks, blockQ, blockK);
            var block = new BlockMask<NoMask, HostTable<int>>(new VariantTable<int>(layout).Host, default,
                heads, qBlocks, kBlocks, blockQ, blockK);
            string context = $"heads {heads}, {qBlocks}x{kBlocks} blocks of {blockQ}x{blockK}: {c}";
            AssertSameMask(block, dense, 1, s.Heads, -40, qBlocks * blockQ + 40, kBlocks * blockK, context);
            AssertSameRun(TableOps.Block(layout, default(NoMask), heads, qBlocks, kBlocks, blockQ, blockK).Run(Backend, c),
                AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore), dense, c.Options), context);
        });

    /// <summary>
    /// DocumentIdMask with ids[b, k] = k / L (every batch row), declared sorted or not, is
    /// FixedDocumentMask(L): element-wise for positions -40..seqK - 1 (past seqK the id mask
    /// has no id, so top-left calls with seqQ &gt; seqK go bottom-right); sorted, Classify
    /// equals FixedDocumentMask's exact one on tiles inside the sequence; through the kernel
    /// alone and under CausalMask (the packing form).
    /// </summary>
    [Property(MaxTest = 60)]
    public Property DocumentIdsOfFixedLengthAreFixedDocuments() =>
        Prop.ForAll(Cases, c =>
        {
            c = InsideKeys(c);
            var s = c.Shape;
            var r = c.Random(6);
            int length = r.Next(2) == 0 ? r.Next(1, 9) : r.Next(1, s.SeqK + 6);
            var ids = new int[s.Batch * s.SeqK];
            for (int i = 0; i < ids.Length; i++) ids[i] = i % s.SeqK / length;
            var fixedDocs = new FixedDocumentMask(length);
            foreach (bool sorted in new[] { true, false })
            {
                var mask = new DocumentIdMask<HostTable<int>>(new VariantTable<int>(ids).Host, s.SeqK, DocumentIdOrders.Order(sorted));
                string context = $"L = {length}, {(sorted ? "sorted" : "unsorted")}: {c}";
                AssertSameMask(mask, fixedDocs, s.Batch, 1, -40, s.SeqK, s.SeqK, context);
                if (sorted) AssertSameClassify(mask, fixedDocs, 1, 0, s.SeqK, s.SeqK, context, s.Batch);
                AssertSameRun(TableOps.DocIds(ids, s.SeqK, sorted, causal: false).Run(Backend, c),
                    AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore), fixedDocs, c.Options), context);
                AssertSameRun(TableOps.DocIds(ids, s.SeqK, sorted, causal: true).Run(Backend, c),
                    AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore),
                        new And<CausalMask, FixedDocumentMask>(default, fixedDocs), c.Options), context);
            }
        });

    /// <summary>
    /// A zero relative-bias table (heads 1 or all, radius 0..50) and an all-ones temperature
    /// table are exact attention: Apply and ApplyRow return the score unchanged (s + 0 and
    /// 1 * s are exact in fp32) for any positions, far apart included (the clamp of k - q is
    /// computed in long), and the kernel matches NoScore.
    /// </summary>
    [Property(MaxTest = 40)]
    public Property NeutralTablesAreExactAttention() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            var r = c.Random(7);
            int heads = r.Next(2) == 0 ? 1 : s.Heads, radius = r.Next(0, 51), positions = r.Next(1, 2 * Math.Max(s.SeqQ, s.SeqK));
            var bias = new RelativeBiasScore<HostTable<float>>(new VariantTable<float>(new float[heads * (2 * radius + 1)]).Host, heads, radius);
            var ones = Enumerable.Repeat(1f, s.Batch * s.Heads * positions).ToArray();
            var tau = new QueryTemperatureScore<HostTable<float>>(new VariantTable<float>(ones).Host, s.Heads, positions);
            string context = $"bias heads {heads} radius {radius}, temperature positions {positions}: {c}";
            var row = new float[70];
            for (int i = 0; i < 200; i++)
            {
                float score = i % 10 == 0 ? new[] { 0f, -0f, 1e30f, -1e-30f, 88.5f }[i / 10 % 5] : (float)(200 * r.NextDouble() - 100);
                int b = r.Next(s.Batch), h = r.Next(s.Heads);
                int q = r.Next(4) == 0 ? (r.Next(2) == 0 ? int.MinValue : int.MaxValue) : r.Next(-500, 500);
                int k = r.Next(4) == 0 ? int.MaxValue - 100 : r.Next(0, 1000);
                Assert.True(bias.Apply(score, b, h, q, k) == score, $"bias: {score:R} at q={q} k={k}. {context}");
                Assert.True(tau.Apply(score, b, h, q, k) == score, $"temperature: {score:R} at q={q}. {context}");
                row.AsSpan().Fill(score);
                bias.ApplyRow(row, b, h, q, k);
                tau.ApplyRow(row, b, h, q, k);
                Assert.True(row.All(x => x == score), $"ApplyRow: {score:R} at q={q} k0={k}. {context}");
            }
            var plain = AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore), default(NoMask), c.Options);
            AssertSameRun(TableOps.RelativeBias(new float[heads * (2 * radius + 1)], heads, radius).Run(Backend, c), plain, context);
            AssertSameRun(TableOps.QueryTemperature(ones, s.Heads, positions).Run(Backend, c), plain, context);
        });

    private void AssertLayoutIsMask<TMask>(AttentionCase c, TMask mask, Random r, bool perHead)
        where TMask : struct, IMaskPredicate
    {
        var s = c.Shape;
        int blockQ = TableData.BlockSize(r), blockK = TableData.BlockSize(r);
        int positions = Math.Max(s.SeqQ, s.SeqK);
        int heads = perHead || r.Next(2) == 0 ? s.Heads : 1;
        int qBlocks = (positions + blockQ - 1) / blockQ, kBlocks = (s.SeqK + blockK - 1) / blockK;
        var layout = BlockMasks.Layout(mask, heads, positions, s.SeqK, blockQ, blockK);
        var block = new BlockMask<TMask, HostTable<int>>(new VariantTable<int>(layout).Host, mask,
            heads, qBlocks, kBlocks, blockQ, blockK);
        string context = $"{typeof(TMask).Name} {mask}, layout heads {heads}, blocks {blockQ}x{blockK}: {c}";
        AssertSameMask(block, mask, 1, s.Heads, 0, positions, s.SeqK, context);
        AssertSameRun(TableOps.Block(layout, mask, heads, qBlocks, kBlocks, blockQ, blockK).Run(Backend, c),
            AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore), mask, c.Options), context);
    }

    /// <summary>Top-left calls with seqQ &gt; seqK have positions past the last key; they go
    /// bottom-right (whose extra rows have negative positions instead).</summary>
    private static AttentionCase InsideKeys(AttentionCase c) =>
        c.Alignment == QueryAlignment.TopLeft && c.Shape.SeqQ > c.Shape.SeqK
            ? c with { Alignment = QueryAlignment.BottomRight } : c;

    private static void AssertSameMask<TA, TB>(TA a, TB b, int batches, int heads, int qLo, int qHi, int kHi, string context)
        where TA : struct, IMaskPredicate where TB : struct, IMaskPredicate
    {
        for (int batch = 0; batch < batches; batch++)
            for (int h = 0; h < heads; h++)
                for (int q = qLo; q < qHi; q++)
                    for (int k = 0; k < kHi; k++)
                        if (a.Allows(batch, h, q, k) != b.Allows(batch, h, q, k))
                            throw new XunitException(
                                $"{typeof(TA).Name} says {a.Allows(batch, h, q, k)}, {typeof(TB).Name} {b.Allows(batch, h, q, k)} at b={batch} h={h} q={q} k={k}. {context}");
    }

    /// <summary>Equal Classify on the tiles of a few tilings of [qLo, qHi) x [0, seqK).</summary>
    private static void AssertSameClassify<TA, TB>(TA a, TB b, int heads, int qLo, int qHi, int seqK, string context, int batches = 1)
        where TA : struct, IMaskPredicate where TB : struct, IMaskPredicate
    {
        foreach (var (bq, bk) in new[] { (16, 16), (32, 64), (1, 16), (7, 5) })
            for (int batch = 0; batch < batches; batch++)
                for (int h = 0; h < heads; h++)
                    for (int q0 = qLo; q0 < qHi; q0 += bq)
                        for (int k0 = 0; k0 < seqK; k0 += bk)
                        {
                            int q1 = Math.Min(q0 + bq, qHi), k1 = Math.Min(k0 + bk, seqK);
                            var ka = a.Classify(batch, h, q0, q1, k0, k1);
                            var kb = b.Classify(batch, h, q0, q1, k0, k1);
                            if (ka != kb)
                                throw new XunitException(
                                    $"{typeof(TA).Name} classifies b={batch} h={h} q=[{q0},{q1}) k=[{k0},{k1}) {ka}, {typeof(TB).Name} {kb}. {context}");
                        }
    }

    private static void AssertSameRun(AttentionResult actual, AttentionResult expected, string context)
    {
        Tight.AssertClose(actual.Output, expected.Output, "output", context);
        Tight.AssertClose(actual.LogSumExp, expected.LogSumExp, "log-sum-exp", context);
    }

    /// <summary>The given query rows of every (batch, head), as a result of seqQ = rows.Length.</summary>
    private static AttentionResult Rows(AttentionResult result, AttentionShape s, int[] rows)
    {
        int bh = s.Batch * s.Heads;
        var output = new float[bh * rows.Length * s.ValueDim];
        var lse = new float[bh * rows.Length];
        for (int i = 0; i < bh; i++)
            for (int j = 0; j < rows.Length; j++)
            {
                long src = (long)i * s.SeqQ + rows[j];
                lse[i * rows.Length + j] = result.LogSumExp[src];
                Array.Copy(result.Output, src * s.ValueDim, output, (i * rows.Length + j) * s.ValueDim, s.ValueDim);
            }
        return new(output, lse);
    }

    /// <summary>Rows <paramref name="rows"/> of each of <paramref name="heads"/> (seq, dim) matrices.</summary>
    private static float[] Gather(float[] data, int heads, int seq, int dim, int[] rows)
    {
        var result = new float[heads * rows.Length * dim];
        for (int h = 0; h < heads; h++)
            for (int j = 0; j < rows.Length; j++)
                Array.Copy(data, ((long)h * seq + rows[j]) * dim, result, (h * rows.Length + j) * dim, dim);
        return result;
    }
}

/// <summary>
/// A mask read from a dense (layout heads, rows, keys) array: positions outside it see
/// nothing; every tile is Partial. Host kernel and reference only (it holds a managed array).
/// </summary>
internal readonly struct DenseTestMask(bool[] allowed, int heads, int rows, int keys) : IMaskPredicate
{
    /// <summary>0 (no bound)</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>No bound.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => int.MaxValue;

    /// <summary>The dense predicate of a block layout: block (h, q / blockQ, k / blockK) is Full.</summary>
    public static DenseTestMask FromLayout(int[] layout, int heads, int qBlocks, int kBlocks, int blockQ, int blockK)
    {
        int rows = qBlocks * blockQ, keys = kBlocks * blockK;
        var allowed = new bool[heads * rows * keys];
        for (int h = 0; h < heads; h++)
            for (int q = 0; q < rows; q++)
                for (int k = 0; k < keys; k++)
                    allowed[(h * rows + q) * keys + k] = layout[(h * qBlocks + q / blockQ) * kBlocks + k / blockK] == (int)TileKind.Full;
        return new(allowed, heads, rows, keys);
    }

    /// <summary>The array's entry; false outside it.</summary>
    public bool Allows(int batch, int head, int q, int k) =>
        (uint)q < (uint)rows && (uint)k < (uint)keys && allowed[((heads == 1 ? 0 : head) * rows + q) * keys + k];

    /// <summary>Partial.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) => TileKind.Partial;
}
