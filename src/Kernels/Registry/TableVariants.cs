using Managed.Kernels.Attention;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Registry;

// The table-reading variants of the registry. Each makes its tables for a call's shape, with
// fixed (deterministic) data, and closes its operators over the table type it is given.

/// <summary>Packed documents from per-token ids, causal; lengths vary per batch row.</summary>
internal sealed class DocumentIdsVariant(string name, bool causal) : TableVariant(name)
{
    protected override (int[] Ints, float[] Floats) Tables(AttentionShape shape)
    {
        var ids = new int[shape.Batch * shape.SeqK];
        int span = Math.Max(1, shape.SeqK / 3);
        for (int b = 0; b < shape.Batch; b++)
        {
            // Causal: contiguous documents of lengths 1..seqK/3; else interleaved ids (unsorted).
            int doc = 0, left = 1 + (b * 11) % span;
            for (int k = 0; k < shape.SeqK; k++)
            {
                if (!causal) { ids[b * shape.SeqK + k] = (k * 7 + b) % 3; continue; }
                if (left-- == 0) { doc++; left = (doc * 37 + b * 11) % span; }
                ids[b * shape.SeqK + k] = doc;
            }
        }
        return (ids, []);
    }

    protected override IAttentionVariant Bind<TInts, TFloats>(TInts ints, TFloats floats, AttentionShape shape) =>
        causal
            ? new AttentionVariant<NoScore, And<CausalMask, DocumentIdMask<TInts>>>(Name, default,
                new(default, new(ints, shape.SeqK, DocumentIdOrder.NonDecreasing)))
            : new AttentionVariant<NoScore, DocumentIdMask<TInts>>(Name, default,
                new(ints, shape.SeqK, DocumentIdOrder.Unordered));
}

/// <summary>Medusa verification: a binary candidate tree of up to 31 nodes after the prefix.</summary>
internal sealed class MedusaTreeVariant(string name) : TableVariant(name)
{
    private static int Nodes(AttentionShape shape) => Math.Min(shape.SeqK, 31);

    protected override (int[] Ints, float[] Floats) Tables(AttentionShape shape)
    {
        var parents = new int[Nodes(shape)];
        for (int i = 0; i < parents.Length; i++) parents[i] = i == 0 ? -1 : (i - 1) / 2;
        return (TreeMasks.Ancestors(parents), []);
    }

    protected override IAttentionVariant Bind<TInts, TFloats>(TInts ints, TFloats floats, AttentionShape shape) =>
        new AttentionVariant<NoScore, TreeMask<TInts>>(Name, default,
            new(ints, shape.SeqK - Nodes(shape), Nodes(shape)));
}

/// <summary>Block sparsity from a layout: a fixed per-head boolean pattern of 16 x 32 blocks
/// (inner = none), or the layout of a sliding window with the window inside.</summary>
internal sealed class BlockLayoutVariant(string name, bool window) : TableVariant(name)
{
    private const int BlockQ = 16, BlockK = 32;
    private static readonly SlidingWindowMask Window = new(20, 5);

    // Query positions run over [0, seqQ) (top-left) or [seqK - seqQ, seqK) (bottom-right).
    private static int Positions(AttentionShape s) => Math.Max(s.SeqQ, s.SeqK);

    protected override (int[] Ints, float[] Floats) Tables(AttentionShape shape)
    {
        if (window) return (BlockMasks.Layout(Window, 1, Positions(shape), shape.SeqK, BlockQ, BlockK), []);
        int qBlocks = (Positions(shape) + BlockQ - 1) / BlockQ, kBlocks = (shape.SeqK + BlockK - 1) / BlockK;
        var layout = new int[shape.Heads * qBlocks * kBlocks];
        for (int i = 0; i < layout.Length; i++)
            layout[i] = (i * 5 + i / kBlocks * 3) % 4 == 0 ? (int)TileKind.Empty : (int)TileKind.Full;
        return (layout, []);
    }

    protected override IAttentionVariant Bind<TInts, TFloats>(TInts ints, TFloats floats, AttentionShape shape)
    {
        int qBlocks = (Positions(shape) + BlockQ - 1) / BlockQ, kBlocks = (shape.SeqK + BlockK - 1) / BlockK;
        return window
            ? new AttentionVariant<NoScore, BlockMask<SlidingWindowMask, TInts>>(Name, default,
                new(ints, Window, 1, qBlocks, kBlocks, BlockQ, BlockK))
            : new AttentionVariant<NoScore, BlockMask<NoMask, TInts>>(Name, default,
                new(ints, default, shape.Heads, qBlocks, kBlocks, BlockQ, BlockK));
    }
}

/// <summary>DuoAttention from a per-head flag array: every third head retrieval (causal), the
/// others streaming (4 sinks + 16-token window).</summary>
internal sealed class HeadFlagsVariant(string name) : TableVariant(name)
{
    protected override (int[] Ints, float[] Floats) Tables(AttentionShape shape)
    {
        var flags = new int[shape.Heads];
        for (int h = 0; h < flags.Length; h++) flags[h] = h % 3 == 0 ? 1 : 0;
        return (flags, []);
    }

    protected override IAttentionVariant Bind<TInts, TFloats>(TInts ints, TFloats floats, AttentionShape shape) =>
        new AttentionVariant<NoScore, HeadSelectMask<CausalMask, SinkWindowMask, TInts>>(Name, default,
            new(ints, default, new(4, 16)));
}

/// <summary>A per-head relative-position bias table of radius 24, causal.</summary>
internal sealed class RelativeBiasVariant(string name) : TableVariant(name)
{
    private const int Radius = 24;

    protected override (int[] Ints, float[] Floats) Tables(AttentionShape shape)
    {
        var bias = new float[shape.Heads * (2 * Radius + 1)];
        for (int i = 0; i < bias.Length; i++) bias[i] = 1.5f * MathF.Sin(0.7f * i);
        return ([], bias);
    }

    protected override IAttentionVariant Bind<TInts, TFloats>(TInts ints, TFloats floats, AttentionShape shape) =>
        new AttentionVariant<RelativeBiasScore<TFloats>, CausalMask>(Name, new(floats, shape.Heads, Radius), default);
}

/// <summary>Per-query temperatures in [0.5, 2) for every (batch, head, position).</summary>
internal sealed class QueryTemperatureVariant(string name) : TableVariant(name)
{
    private static int Positions(AttentionShape s) => Math.Max(s.SeqQ, s.SeqK);

    protected override (int[] Ints, float[] Floats) Tables(AttentionShape shape)
    {
        var tau = new float[shape.Batch * shape.Heads * Positions(shape)];
        for (int i = 0; i < tau.Length; i++) tau[i] = 0.5f + 1.5f * (i * 0.618034f % 1f);
        return ([], tau);
    }

    protected override IAttentionVariant Bind<TInts, TFloats>(TInts ints, TFloats floats, AttentionShape shape) =>
        new AttentionVariant<QueryTemperatureScore<TFloats>, NoMask>(Name,
            new(floats, shape.Heads, Positions(shape)), default);
}
