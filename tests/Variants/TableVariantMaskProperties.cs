using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;
using Xunit.Sdk;
using static Managed.Tests.Variants.MaskClassifyProperties;

namespace Managed.Tests.Variants;

/// <summary>
/// Classify against Allows for the table masks (host tables), on random tables: no tile
/// called Empty holds an allowed pair, no tile called Full a masked one. Each case checks the
/// tiles of several kernel-like tilings (16 x 16, 32 x 64, 64 x 64, the CPU kernel's one-row
/// 16-key chunks, and 7 x 5, which no block size divides), ragged at the ends, over query
/// positions from -40 (bottom-right alignment with seqQ &gt; seqK) to 40 past the table, and
/// 60 random tiles of 1..80 rows and keys. Keys stay in [0, seqK): kernels never ask beyond,
/// and the tables hold nothing there. No tolerance: predicates are exact.
/// </summary>
public sealed class TableVariantMaskProperties
{
    /// <summary>A document-id table: batch rows of seqK ids, sorted or not, from a seed.</summary>
    public sealed record DocCase(int Batch, int SeqK, bool Sorted, int Seed)
    {
        /// <summary>The ids.</summary>
        public int[] Ids() => Sorted ? TableData.SortedIds(new Random(Seed), Batch, SeqK)
            : TableData.UnsortedIds(new Random(Seed), Batch, SeqK);

        /// <inheritdoc/>
        public override string ToString() => $"doc ids batch {Batch} seqK {SeqK} {(Sorted ? "sorted" : "unsorted")} {TableData.Show(Ids())}";
    }

    /// <summary>A random tree after a prefix: parent[i] uniform in [-1, i).</summary>
    public sealed record TreeCase(int Prefix, int Nodes, int Seed)
    {
        /// <summary>The parents.</summary>
        public int[] Parents() => TableData.Parents(new Random(Seed), Nodes);

        /// <inheritdoc/>
        public override string ToString() => $"tree prefix {Prefix} parents [{string.Join(",", Parents())}]";
    }

    /// <summary>A random block layout (kinds 0 / 1 / 2) over positions x seqK, blocks of any size.</summary>
    public sealed record BlockCase(int Heads, int Positions, int SeqK, int BlockQ, int BlockK, int Seed)
    {
        /// <summary>Query blocks.</summary>
        public int QBlocks => (Positions + BlockQ - 1) / BlockQ;

        /// <summary>Key blocks.</summary>
        public int KBlocks => (SeqK + BlockK - 1) / BlockK;

        /// <summary>The layout.</summary>
        public int[] Layout() => TableData.Layout(new Random(Seed), Heads * QBlocks * KBlocks, boolean: false);

        /// <inheritdoc/>
        public override string ToString() =>
            $"block heads {Heads} positions {Positions} seqK {SeqK} blocks {BlockQ}x{BlockK} layout {TableData.Show(Layout())}";
    }

    private static Gen<int> Length(int max) =>
        Gen.Frequency((1, Gen.Elements(1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, max)), (2, Gen.Choose(1, max)));

    private static Arbitrary<DocCase> Docs(bool sorted) =>
        (from batch in Gen.Choose(1, 3) from seqK in Length(200) from seed in AttentionGen.Seed
         select new DocCase(batch, seqK, sorted, seed)).ToArbitrary();

    private static Arbitrary<TreeCase> Trees { get; } =
        (from prefix in Gen.Frequency((1, Gen.Constant(0)), (2, Gen.Choose(0, 60)))
         from nodes in Length(100) from seed in AttentionGen.Seed
         select new TreeCase(prefix, nodes, seed)).ToArbitrary();

    private static Arbitrary<BlockCase> Blocks { get; } =
        (from heads in Gen.Elements(1, 1, 2, 3, 4)
         from positions in Length(200) from seqK in Length(200)
         from blockQ in Gen.Frequency((1, Gen.Elements(1, 16, 32, 64)), (2, Gen.Choose(1, 70)))
         from blockK in Gen.Frequency((1, Gen.Elements(1, 16, 32, 64)), (2, Gen.Choose(1, 70)))
         from seed in AttentionGen.Seed
         select new BlockCase(heads, positions, seqK, blockQ, blockK, seed)).ToArbitrary();

    /// <summary>Sorted ids of random document lengths (ids with gaps, so id ranges can meet
    /// with no shared id): Classify reads tile corners only. Besides soundness, the skipping it
    /// documents, with the ids' min and max scanned over the tile: a tile whose query and key
    /// id ranges do not meet is Empty, and one inside a single document (queries in [0, seqK))
    /// is Full.</summary>
    [Property(MaxTest = 300)]
    public Property DocumentIdSortedClassifyAgrees() =>
        Prop.ForAll(Docs(sorted: true), AttentionGen.Seed.ToArbitrary(), (d, seed) =>
        {
            var ids = d.Ids();
            var mask = new DocumentIdMask<HostTable<int>>(new VariantTable<int>(ids).Host, d.SeqK, DocumentIdOrder.NonDecreasing);
            AssertAgreesOnTiles(mask, d.Batch, 1, -40, d.SeqK + 40, d.SeqK, new Random(seed), $"{d}", t =>
            {
                int qa = Math.Max(t.Q0, 0), qb = Math.Min(t.Q1, d.SeqK);
                if (qa >= qb) return TileKind.Empty;
                var qIds = ids.AsSpan(t.Batch * d.SeqK + qa, qb - qa);
                var kIds = ids.AsSpan(t.Batch * d.SeqK + t.K0, t.K1 - t.K0);
                int qMin = Min(qIds), qMax = Max(qIds), kMin = Min(kIds), kMax = Max(kIds);
                if (kMax < qMin || kMin > qMax) return TileKind.Empty;
                return qa == t.Q0 && qb == t.Q1 && qMin == qMax && kMin == kMax && qMin == kMin ? TileKind.Full : null;
            });
        });

    /// <summary>Unsorted ids (1..4 distinct values): Classify skips nothing on the sequence,
    /// and must still be sound.</summary>
    [Property(MaxTest = 200)]
    public Property DocumentIdUnsortedClassifyAgrees() =>
        Prop.ForAll(Docs(sorted: false), AttentionGen.Seed.ToArbitrary(), (d, seed) =>
        {
            var mask = new DocumentIdMask<HostTable<int>>(new VariantTable<int>(d.Ids()).Host, d.SeqK, DocumentIdOrder.Unordered);
            AssertAgreesOnTiles(mask, d.Batch, 1, -40, d.SeqK + 40, d.SeqK, new Random(seed), $"{d}");
        });

    /// <summary>Random trees of 1..100 nodes (more than one 32-bit word of ancestors) after a
    /// prefix of 0..60 causal tokens.</summary>
    [Property(MaxTest = 300)]
    public Property TreeClassifyAgrees() =>
        Prop.ForAll(Trees, AttentionGen.Seed.ToArbitrary(), (t, seed) =>
        {
            var mask = new TreeMask<HostTable<int>>(
                new VariantTable<int>(TreeMasks.Ancestors(t.Parents())).Host, t.Prefix, t.Nodes);
            int seqK = t.Prefix + t.Nodes;
            AssertAgreesOnTiles(mask, 1, 1, -40, seqK + 40, seqK, new Random(seed), $"{t}");
        });

    /// <summary>Random 0 / 1 / 2 layouts over a sliding window (random extents 0..100):
    /// Partial blocks defer to the window's own Classify on the part of the tile inside them.</summary>
    [Property(MaxTest = 300)]
    public Property BlockOfWindowClassifyAgrees() =>
        Prop.ForAll(Blocks, MaskGen.SlidingWindow.ToArbitrary(), AttentionGen.Seed.ToArbitrary(),
            (b, window, seed) => AssertBlockAgrees(b, window, seed));

    /// <summary>Random 0 / 1 / 2 layouts over the causal mask.</summary>
    [Property(MaxTest = 300)]
    public Property BlockOfCausalClassifyAgrees() =>
        Prop.ForAll(Blocks, AttentionGen.Seed.ToArbitrary(), (b, seed) => AssertBlockAgrees(b, default(CausalMask), seed));

    /// <summary>Random flags (0, 1, and other nonzero values) choosing per head between
    /// CausalMask and a sink window, and between a sliding window and a prefix-LM mask.</summary>
    [Property(MaxTest = 200)]
    public Property HeadSelectClassifyAgrees() =>
        Prop.ForAll(Gen.Choose(1, 8).SelectMany(n => Gen.ArrayOf(Gen.Elements(0, 0, 1, 1, -1, 5), n)).ToArbitrary(),
            (from sink in MaskGen.SinkWindow from window in MaskGen.SlidingWindow from prefix in MaskGen.PrefixLm
             select (sink, window, prefix)).ToArbitrary(),
            AttentionGen.Seed.ToArbitrary(), (flags, masks, seed) =>
            {
                var (sink, window, prefix) = masks;
                var table = new VariantTable<int>(flags).Host;
                string context = $"flags [{string.Join(",", flags)}]";
                AssertAgreesOnTiles(new HeadSelectMask<CausalMask, SinkWindowMask, HostTable<int>>(table, default, sink),
                    1, flags.Length, -40, 240, 200, new Random(seed), context);
                AssertAgreesOnTiles(new HeadSelectMask<SlidingWindowMask, PrefixLmMask, HostTable<int>>(table, window, prefix),
                    1, flags.Length, -40, 240, 200, new Random(seed), context);
            });

    private static int Min(ReadOnlySpan<int> xs)
    {
        int m = int.MaxValue;
        foreach (int x in xs) m = Math.Min(m, x);
        return m;
    }

    private static int Max(ReadOnlySpan<int> xs)
    {
        int m = int.MinValue;
        foreach (int x in xs) m = Math.Max(m, x);
        return m;
    }

    private static void AssertBlockAgrees<TInner>(BlockCase b, TInner inner, int seed) where TInner : struct, IMaskPredicate
    {
        var mask = new BlockMask<TInner, HostTable<int>>(new VariantTable<int>(b.Layout()).Host, inner,
            b.Heads, b.QBlocks, b.KBlocks, b.BlockQ, b.BlockK);
        // Layout heads 1 are shared: ask for heads beyond it too.
        AssertAgreesOnTiles(mask, 1, b.Heads == 1 ? 3 : b.Heads, -40, b.QBlocks * b.BlockQ + 40,
            b.SeqK, new Random(seed), $"{b} inner {inner}");
    }

    /// <summary>
    /// Classify is sound on every tile of the tilings and on random tiles; where
    /// <paramref name="expected"/> returns a kind (a documented skip), Classify must return it.
    /// </summary>
    internal static void AssertAgreesOnTiles<TMask>(TMask mask, int batches, int heads, int qLo, int qHi,
        int seqK, Random r, string context, Func<Tile, TileKind?>? expected = null)
        where TMask : struct, IMaskPredicate
    {
        foreach (var (bq, bk) in new[] { (16, 16), (32, 64), (64, 64), (1, 16), (7, 5) })
        {
            int batch = r.Next(batches), head = r.Next(heads);
            // Tilings start at qLo and at an offset, as the kernel's pos0 = q0 + (seqK - seqQ) does.
            int start = qLo + r.Next(bq);
            for (int q0 = start; q0 < qHi; q0 += bq)
                for (int k0 = 0; k0 < seqK; k0 += bk)
                    Check(mask, new Tile(batch, head, q0, Math.Min(q0 + bq, qHi), k0, Math.Min(k0 + bk, seqK)), context, expected);
        }
        for (int i = 0; i < 60; i++)
        {
            int q0 = r.Next(qLo, qHi);
            int rows = r.Next(3) == 0 ? new[] { 1, 16, 32, 33, 64 }[r.Next(5)] : r.Next(1, 81);
            int k0 = r.Next(2) == 0 ? Math.Clamp(q0 + r.Next(-80, 81), 0, seqK - 1) : r.Next(seqK);
            int keys = r.Next(3) == 0 ? new[] { 1, 16, 32, 64 }[r.Next(4)] : r.Next(1, 81);
            Check(mask, new Tile(r.Next(batches), r.Next(heads), q0, q0 + rows, k0, Math.Min(seqK, k0 + keys)), context, expected);
        }
    }

    private static void Check<TMask>(TMask mask, Tile t, string context, Func<Tile, TileKind?>? expected)
        where TMask : struct, IMaskPredicate
    {
        var kind = mask.Classify(t.Batch, t.Head, t.Q0, t.Q1, t.K0, t.K1);
        var (any, all) = Scan(mask, t);
        if (kind == TileKind.Empty && any)
            throw new XunitException($"{typeof(TMask).Name}: Empty tile {t} holds an allowed pair. {context}");
        if (kind == TileKind.Full && !all)
            throw new XunitException($"{typeof(TMask).Name}: Full tile {t} holds a masked pair. {context}");
        if (expected?.Invoke(t) is { } want && kind != want)
            throw new XunitException($"{typeof(TMask).Name}: tile {t} is {kind}, documented {want}. {context}");
    }
}
