using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>
/// A mask given by data at block level, FlexAttention's BlockMask: a layout of
/// (heads, query blocks, key blocks) tile kinds (0 Empty, 1 Partial, 2 Full, as
/// <see cref="TileKind"/>) over blocks of blockQ query positions x blockK keys, with an inner
/// element mask consulted only in Partial blocks. A boolean layout (0 / 2) with
/// <see cref="NoMask"/> is SeerAttention- or MoA-style block sparsity; a layout built from a
/// mask by <see cref="BlockMasks.Layout"/> with that mask inside is the mask itself, with its
/// tile classes precomputed. Layout heads are 1 (shared by all heads) or the query heads.
/// Positions outside the layout see no key. A default instance has no layout (0 heads and
/// blocks): entry points reject it; the inner mask is validated as at top level.
/// </summary>
public readonly struct BlockMask<TInner, TLayout> : IMaskPredicate, IShapeDependent, IValidated
    where TInner : struct, IMaskPredicate
    where TLayout : struct, ITable<int>
{
    private readonly TLayout _layout;
    private readonly TInner _inner;
    private readonly int _heads, _qBlocks, _kBlocks, _blockQ, _blockK;

    /// <summary>A block mask over <paramref name="layout"/> of (<paramref name="heads"/>,
    /// <paramref name="queryBlocks"/>, <paramref name="keyBlocks"/>) kinds.</summary>
    public BlockMask(TLayout layout, TInner inner, int heads, int queryBlocks, int keyBlocks,
        int blockQ, int blockK)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queryBlocks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keyBlocks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockQ);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockK);
        _layout = layout;
        _inner = inner;
        _heads = heads;
        _qBlocks = queryBlocks;
        _kBlocks = keyBlocks;
        _blockQ = blockQ;
        _blockK = blockK;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Kind(int head, int qb, int kb) =>
        _layout[((_heads == 1 ? 0 : head) * _qBlocks + qb) * _kBlocks + kb];

    /// <summary>0 (no bound)</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>int.MaxValue (no bound)</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => int.MaxValue;

    /// <summary>Full block: true; Empty: false; Partial: the inner mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k)
    {
        if ((uint)q >= (uint)(_qBlocks * _blockQ) || (uint)k >= (uint)(_kBlocks * _blockK)) return false;
        int kind = Kind(head, q / _blockQ, k / _blockK);
        return kind == (int)TileKind.Full
            || kind == (int)TileKind.Partial && _inner.Allows(batch, head, q, k);
    }

    /// <summary>
    /// Combines the blocks the tile overlaps (the inner mask classifies its part of each Partial
    /// block): Full if all are Full, Empty if all are Empty, else Partial.
    /// </summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        int qa = Math.Max(q0, 0), qb = Math.Min(q1, _qBlocks * _blockQ);
        if (qa >= qb) return TileKind.Empty;
        bool full = qa == q0 && qb == q1, empty = true;
        for (int bq = qa / _blockQ; bq <= (qb - 1) / _blockQ; bq++)
            for (int bk = k0 / _blockK; bk <= (k1 - 1) / _blockK; bk++)
            {
                var kind = (TileKind)Kind(head, bq, bk);
                if (kind == TileKind.Partial)
                    kind = _inner.Classify(batch, head, Math.Max(qa, bq * _blockQ),
                        Math.Min(qb, (bq + 1) * _blockQ), Math.Max(k0, bk * _blockK),
                        Math.Min(k1, (bk + 1) * _blockK));
                full &= kind == TileKind.Full;
                empty &= kind == TileKind.Empty;
                if (!full && !empty) return TileKind.Partial;
            }
        return empty ? TileKind.Empty : full ? TileKind.Full : TileKind.Partial;
    }

    /// <summary>The layout's dimensions are missing (default), else the inner mask's
    /// parameter error.</summary>
    public string? ParameterError() =>
        _heads < 1 || _qBlocks < 1 || _kBlocks < 1 || _blockQ < 1 || _blockK < 1
            ? VariantChecks.Missing("BlockMask", "layout", "missing (0 heads or blocks)",
                "a layout of >= 1 heads and blocks", isDefault: _heads == 0)
            : VariantChecks.ParameterError(_inner);

    /// <summary>The layout must cover the call's keys and heads; host layouts hold only 0, 1, 2.</summary>
    public void Validate(AttentionShape shape)
    {
        if ((long)_kBlocks * _blockK < shape.SeqK)
            throw new ArgumentException(
                $"BlockMask covers {_kBlocks} x {_blockK} keys; the call has seqK {shape.SeqK}.", nameof(shape));
        if (_heads != 1 && _heads != shape.Heads)
            throw new ArgumentException(
                $"BlockMask has {_heads} layout heads; expected 1 or the call's {shape.Heads} heads.", nameof(shape));
        long need = (long)_heads * _qBlocks * _kBlocks;
        if (_layout.Length < need)
            throw new ArgumentException(
                $"BlockMask layout holds {_layout.Length} entries; {_heads} x {_qBlocks} x {_kBlocks} = {need} are needed.", nameof(shape));
        if (TLayout.HostReadable)
            for (int i = 0; i < need; i++)
                if ((uint)_layout[i] > (uint)TileKind.Full)
                    throw new ArgumentException($"BlockMask layout[{i}] = {_layout[i]}; expected 0 (Empty), 1 (Partial) or 2 (Full).", nameof(shape));
        VariantChecks.Validate(_inner, shape);
    }
}

/// <summary>Host-side helpers for block masks.</summary>
public static class BlockMasks
{
    /// <summary>
    /// The block layout of <paramref name="mask"/> (FlexAttention's create_block_mask): the
    /// tile kind of every (head, query block, key block) over query positions [0, positions)
    /// and keys [0, seqK), for batch 0. A block mask with this layout and the same mask inside
    /// equals the mask on those positions.
    /// </summary>
    public static int[] Layout<TMask>(TMask mask, int heads, int positions, int seqK, int blockQ, int blockK)
        where TMask : struct, IMaskPredicate
    {
        int qBlocks = (positions + blockQ - 1) / blockQ, kBlocks = (seqK + blockK - 1) / blockK;
        var layout = new int[heads * qBlocks * kBlocks];
        for (int h = 0; h < heads; h++)
            for (int bq = 0; bq < qBlocks; bq++)
                for (int bk = 0; bk < kBlocks; bk++)
                    layout[(h * qBlocks + bq) * kBlocks + bk] = (int)mask.Classify(0, h, bq * blockQ,
                        Math.Min(positions, (bq + 1) * blockQ), bk * blockK, Math.Min(seqK, (bk + 1) * blockK));
        return layout;
    }
}
