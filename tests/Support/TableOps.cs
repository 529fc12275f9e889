using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;

namespace Managed.Tests.Support;

/// <summary>
/// A table-reading (score, mask) pair with its tables' data, bindable to host tables
/// (<see cref="VariantTable{T}.Host"/>) or to device views of copies uploaded with
/// <see cref="VariantTable{T}.Upload"/>. One definition thus runs on the host kernel, on an
/// ILGPU device and in the reference with the same data.
/// </summary>
public abstract class TableOp(string name, int[] ints, float[] floats)
{
    /// <summary>What the operator is, with its parameters (for failure messages).</summary>
    public string Name => name;

    /// <summary>The int table (ids, ancestors, layout, flags), or empty.</summary>
    public int[] Ints => ints;

    /// <summary>The float table (bias, temperatures), or empty.</summary>
    public float[] Floats => floats;

    /// <summary>The operator over <paramref name="intTable"/> and <paramref name="floatTable"/>.</summary>
    public abstract IAttentionVariant Bind<TI, TF>(TI intTable, TF floatTable)
        where TI : struct, ITable<int>
        where TF : struct, ITable<float>;

    /// <summary>Bound to host tables over pinned copies of the data.</summary>
    public IAttentionVariant BindHost() =>
        Bind(new VariantTable<int>(ints).Host, new VariantTable<float>(floats).Host);

    /// <summary>The fp64 reference, with host tables.</summary>
    public (double[] Output, double[] LogSumExp) Reference(AttentionCase c, AttentionOptions? options = null) =>
        BindHost().Reference(c.Shape, c.Query, c.Key, c.Value, options ?? c.Options);

    /// <summary>Runs the case on <paramref name="backend"/>: device tables on an ILGPU backend,
    /// host tables otherwise.</summary>
    public AttentionResult Run(TestDevice backend, AttentionCase c, AttentionOptions? options = null)
    {
        var (output, lse) = AttentionRun.Allocate(c.Shape);
        Run(backend, backend.Device.Accelerator, c.Shape, c.Query, c.Key, c.Value,
            output, lse, options ?? c.Options);
        return new(output, lse);
    }

    /// <summary>
    /// Runs on <paramref name="backend"/> with the tables on <paramref name="tablesOn"/> (device
    /// views of uploaded copies, released after the call) or, when null, host tables; either
    /// may be the wrong side for the backend (validation tests).
    /// </summary>
    public void Run(TestDevice backend, Accelerator? tablesOn, AttentionShape shape,
        float[] query, float[] key, float[] value, float[] output, float[] logSumExp,
        AttentionOptions options)
    {
        if (tablesOn is null)
        {
            backend.Run(BindHost(), shape, query, key, value, output, logSumExp, options);
            return;
        }
        using var deviceInts = new VariantTable<int>(ints).Upload(tablesOn);
        using var deviceFloats = new VariantTable<float>(floats).Upload(tablesOn);
        // The span entry points wait for the kernel, so the buffers outlive it.
        backend.Run(Bind(new DeviceTable<int>(deviceInts.View.SubView(0, ints.Length)),
                new DeviceTable<float>(deviceFloats.View.SubView(0, floats.Length))),
            shape, query, key, value, output, logSumExp, options);
    }

    /// <inheritdoc/>
    public override string ToString() => name;
}

/// <summary>The table operators of the library as <see cref="TableOp"/>s, and random ones for a case.</summary>
public static class TableOps
{
    /// <summary>DocumentIdMask (and CausalMask when <paramref name="causal"/>).</summary>
    public static TableOp DocIds(int[] ids, int seqK, bool sorted, bool causal) => new DocIdsOp(ids, seqK, sorted, causal);

    /// <summary>TreeMask over ancestor rows.</summary>
    public static TableOp Tree(int[] ancestors, int prefix, int nodes, string? name = null) =>
        new TreeOp(ancestors, prefix, nodes, name);

    /// <summary>BlockMask with <paramref name="inner"/>.</summary>
    public static TableOp Block<TInner>(int[] layout, TInner inner, int heads, int qBlocks, int kBlocks,
        int blockQ, int blockK) where TInner : struct, IMaskPredicate =>
        new BlockOp<TInner>(layout, inner, heads, qBlocks, kBlocks, blockQ, blockK);

    /// <summary>HeadSelectMask of <paramref name="set"/> and <paramref name="clear"/>.</summary>
    public static TableOp HeadSelect<TSet, TClear>(int[] flags, TSet set, TClear clear)
        where TSet : struct, IMaskPredicate where TClear : struct, IMaskPredicate =>
        new HeadSelectOp<TSet, TClear>(flags, set, clear);

    /// <summary>RelativeBiasScore, no mask.</summary>
    public static TableOp RelativeBias(float[] bias, int heads, int radius) => new RelativeBiasOp(bias, heads, radius);

    /// <summary>QueryTemperatureScore, no mask.</summary>
    public static TableOp QueryTemperature(float[] tau, int heads, int positions) =>
        new QueryTemperatureOp(tau, heads, positions);

    /// <summary>Names of the kinds <see cref="Random"/> makes.</summary>
    public static readonly string[] Kinds =
    [
        "docids-sorted-causal", "docids-unsorted", "tree", "block-window", "block-boolean",
        "block-of-causal", "head-select", "relative-bias", "query-temperature",
    ];

    /// <summary>
    /// A random operator of kind <paramref name="kind"/> (index into <see cref="Kinds"/>) whose
    /// tables fit the case's shape; its data comes from the case's seed, so a failure replays.
    /// Query positions run over [seqK - seqQ, seqK) or [0, seqQ), so position tables cover
    /// max(seqQ, seqK) positions (or fewer, where the operator defines what lies beyond).
    /// </summary>
    public static TableOp Random(int kind, AttentionCase c)
    {
        var s = c.Shape;
        var r = c.Random(40 + kind);
        int positions = Math.Max(s.SeqQ, s.SeqK);
        switch (kind)
        {
            case 0:
                return DocIds(TableData.SortedIds(r, s.Batch, s.SeqK), s.SeqK, sorted: true, causal: true);
            case 1:
                return DocIds(TableData.UnsortedIds(r, s.Batch, s.SeqK), s.SeqK, sorted: false, causal: false);
            case 2:
            {
                int prefix = r.Next(3) == 0 ? 0 : r.Next(0, s.SeqK);
                var parents = TableData.Parents(r, s.SeqK - prefix);
                return Tree(TreeMasks.Ancestors(parents), prefix, parents.Length,
                    $"tree(prefix {prefix}, parents [{string.Join(",", parents)}])");
            }
            case 3:
            case 4:
            case 5:
            {
                int blockQ = TableData.BlockSize(r), blockK = TableData.BlockSize(r);
                // Sometimes the layout covers fewer query positions than the call: rows past it see nothing.
                int covered = r.Next(4) == 0 ? r.Next(1, positions + 1) : positions;
                int qBlocks = (covered + blockQ - 1) / blockQ, kBlocks = (s.SeqK + blockK - 1) / blockK + r.Next(2);
                int heads = r.Next(2) == 0 ? 1 : s.Heads;
                if (kind == 5)
                    return Block(BlockMasks.Layout(default(CausalMask), heads, covered, s.SeqK, blockQ, blockK),
                        default(CausalMask), heads, qBlocks, (s.SeqK + blockK - 1) / blockK, blockQ, blockK);
                var layout = TableData.Layout(r, heads * qBlocks * kBlocks, boolean: kind == 4);
                return kind == 3
                    ? Block(layout, new SlidingWindowMask(r.Next(0, 40), r.Next(0, 40)), heads, qBlocks, kBlocks, blockQ, blockK)
                    : Block(layout, default(NoMask), heads, qBlocks, kBlocks, blockQ, blockK);
            }
            case 6:
            {
                var flags = new int[s.Heads + r.Next(2)];
                for (int h = 0; h < flags.Length; h++) flags[h] = r.Next(-1, 3); // nonzero values other than 1 count as set
                return HeadSelect(flags, default(CausalMask), new SinkWindowMask(r.Next(0, 6), r.Next(1, 40)));
            }
            case 7:
            {
                int heads = r.Next(2) == 0 ? 1 : s.Heads, radius = r.Next(0, 50);
                return RelativeBias(TableData.Uniform(r, heads * (2 * radius + 1), -3f, 3f), heads, radius);
            }
            default:
            {
                int covered = r.Next(3) == 0 ? r.Next(1, positions + 1) : positions;
                return QueryTemperature(TableData.Uniform(r, s.Batch * s.Heads * covered, 0.25f, 3f), s.Heads, covered);
            }
        }
    }

    private sealed class DocIdsOp(int[] ids, int seqK, bool sorted, bool causal)
        : TableOp($"docids(seqK {seqK}, {(sorted ? "sorted" : "unsorted")}{(causal ? ", causal" : "")}, ids {TableData.Show(ids)})", ids, [])
    {
        public override IAttentionVariant Bind<TI, TF>(TI intTable, TF floatTable) => causal
            ? new AttentionVariant<NoScore, And<CausalMask, DocumentIdMask<TI>>>(Name, default,
                new(default, new(intTable, seqK, DocumentIdOrders.Order(sorted))))
            : new AttentionVariant<NoScore, DocumentIdMask<TI>>(Name, default, new(intTable, seqK, DocumentIdOrders.Order(sorted)));
    }

    private sealed class TreeOp(int[] ancestors, int prefix, int nodes, string? name)
        : TableOp(name ?? $"tree(prefix {prefix}, {nodes} nodes, ancestors {TableData.Show(ancestors)})", ancestors, [])
    {
        public override IAttentionVariant Bind<TI, TF>(TI intTable, TF floatTable) =>
            new AttentionVariant<NoScore, TreeMask<TI>>(Name, default, new(intTable, prefix, nodes));
    }

    private sealed class BlockOp<TInner>(int[] layout, TInner inner, int heads, int qBlocks, int kBlocks, int blockQ, int blockK)
        : TableOp($"block<{typeof(TInner).Name}>(heads {heads}, {qBlocks}x{kBlocks} blocks of {blockQ}x{blockK}, layout {TableData.Show(layout)})", layout, [])
        where TInner : struct, IMaskPredicate
    {
        public override IAttentionVariant Bind<TI, TF>(TI intTable, TF floatTable) =>
            new AttentionVariant<NoScore, BlockMask<TInner, TI>>(Name, default,
                new(intTable, inner, heads, qBlocks, kBlocks, blockQ, blockK));
    }

    private sealed class HeadSelectOp<TSet, TClear>(int[] flags, TSet set, TClear clear)
        : TableOp($"head-select<{typeof(TSet).Name}, {typeof(TClear).Name}>(flags {TableData.Show(flags)})", flags, [])
        where TSet : struct, IMaskPredicate where TClear : struct, IMaskPredicate
    {
        public override IAttentionVariant Bind<TI, TF>(TI intTable, TF floatTable) =>
            new AttentionVariant<NoScore, HeadSelectMask<TSet, TClear, TI>>(Name, default, new(intTable, set, clear));
    }

    private sealed class RelativeBiasOp(float[] bias, int heads, int radius)
        : TableOp($"relative-bias(heads {heads}, radius {radius})", [], bias)
    {
        public override IAttentionVariant Bind<TI, TF>(TI intTable, TF floatTable) =>
            new AttentionVariant<RelativeBiasScore<TF>, NoMask>(Name, new(floatTable, heads, radius), default);
    }

    private sealed class QueryTemperatureOp(float[] tau, int heads, int positions)
        : TableOp($"query-temperature(heads {heads}, positions {positions})", [], tau)
    {
        public override IAttentionVariant Bind<TI, TF>(TI intTable, TF floatTable) =>
            new AttentionVariant<QueryTemperatureScore<TF>, NoMask>(Name, new(floatTable, heads, positions), default);
    }
}

/// <summary>Random table data (from a seeded <see cref="System.Random"/>, so failures replay).</summary>
public static class TableData
{
    /// <summary>
    /// Non-decreasing ids (batch, seqK): documents of random lengths (short ones of 1..4
    /// tokens, medium, or up to the whole row), ids rising by 1..3 from a start in -2..2 (gaps
    /// in the ids, so a tile's id ranges may overlap with no shared id).
    /// </summary>
    public static int[] SortedIds(Random r, int batch, int seqK)
    {
        var ids = new int[batch * seqK];
        for (int b = 0; b < batch; b++)
        {
            int id = r.Next(-2, 3), left = DocumentLength(r, seqK);
            for (int k = 0; k < seqK; k++)
            {
                if (left == 0)
                {
                    id += r.Next(1, 4);
                    left = DocumentLength(r, seqK);
                }
                ids[b * seqK + k] = id;
                left--;
            }
        }
        return ids;
    }

    private static int DocumentLength(Random r, int seqK) => r.Next(3) switch
    {
        0 => r.Next(1, 5),
        1 => r.Next(1, Math.Max(2, seqK / 4) + 1),
        _ => r.Next(1, seqK + 1),
    };

    /// <summary>Ids in no order: 1..4 distinct values, uniform per token.</summary>
    public static int[] UnsortedIds(Random r, int batch, int seqK)
    {
        int distinct = r.Next(1, 5);
        var ids = new int[batch * seqK];
        for (int i = 0; i < ids.Length; i++) ids[i] = r.Next(distinct) * 7 - 3;
        return ids;
    }

    /// <summary>A random tree of <paramref name="nodes"/> nodes: parent[i] uniform in [-1, i).</summary>
    public static int[] Parents(Random r, int nodes)
    {
        var parents = new int[nodes];
        for (int i = 0; i < nodes; i++) parents[i] = r.Next(-1, i);
        return parents;
    }

    /// <summary>A block size: a power of two, a tile-awkward size, or uniform in 1..70.</summary>
    public static int BlockSize(Random r) => r.Next(3) switch
    {
        0 => new[] { 1, 16, 32, 64, 128 }[r.Next(5)],
        1 => new[] { 3, 5, 7, 24, 33, 48 }[r.Next(6)],
        _ => r.Next(1, 71),
    };

    /// <summary>Tile kinds 0 / 1 / 2 uniform, or 0 / 2 when <paramref name="boolean"/>.</summary>
    public static int[] Layout(Random r, int length, bool boolean)
    {
        var layout = new int[length];
        for (int i = 0; i < length; i++) layout[i] = boolean ? 2 * r.Next(2) : r.Next(3);
        return layout;
    }

    /// <summary><paramref name="length"/> floats uniform in [lo, hi).</summary>
    public static float[] Uniform(Random r, int length, float lo, float hi)
    {
        var data = new float[length];
        for (int i = 0; i < length; i++) data[i] = lo + (hi - lo) * (float)r.NextDouble();
        return data;
    }

    /// <summary>An array for a message: its length and up to 64 leading entries.</summary>
    public static string Show(int[] data) =>
        $"[{data.Length}: {string.Join(",", data.Take(64))}{(data.Length > 64 ? ",..." : "")}]";
}

/// <summary>Test shorthand for document-id order flags.</summary>
public static class DocumentIdOrders
{
    /// <summary>NonDecreasing when <paramref name="sorted"/>, else Unordered.</summary>
    public static DocumentIdOrder Order(bool sorted) =>
        sorted ? DocumentIdOrder.NonDecreasing : DocumentIdOrder.Unordered;
}
