using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>How the ids of a <see cref="DocumentIdMask{TIds}"/> are ordered along a row.</summary>
public enum DocumentIdOrder : byte
{
    /// <summary>Any order (documents interleaved): every tile that meets the sequence is
    /// Partial.</summary>
    Unordered,
    /// <summary>The ids never decrease along a batch row (packed contiguous documents): whole
    /// tiles are classified from their corners and skipped.</summary>
    NonDecreasing,
}

/// <summary>
/// Document masking for packed sequences from per-token document ids (FlexAttention's
/// document mask): a query at position p attends to key k when ids[b, p] == ids[b, k].
/// The table is (batch, seqK): one id per key position; queries use the id of their position
/// (positions outside [0, seqK) see no key). Combine with <see cref="CausalMask"/> for causal
/// packing. When the ids never decrease along each batch row (packed documents are contiguous),
/// <see cref="Classify"/> reads only tile corners and skips whole tiles; otherwise every tile
/// that meets the sequence is Partial (exact, no skipping). A default instance has no ids
/// (seqK 0): entry points reject it.
/// </summary>
public readonly struct DocumentIdMask<TIds> : IMaskPredicate, IShapeDependent, IValidated
    where TIds : struct, ITable<int>
{
    private readonly TIds _ids;
    private readonly int _seqK, _sorted;

    /// <summary>Document ids <paramref name="ids"/> of shape (batch, <paramref name="seqK"/>);
    /// <paramref name="order"/> says whether they never decrease along a batch row (checked on
    /// host tables; a device table's caller vouches for it).</summary>
    public DocumentIdMask(TIds ids, int seqK, DocumentIdOrder order)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seqK);
        if (!Enum.IsDefined(order))
            throw new ArgumentOutOfRangeException(nameof(order), order, "Unknown order.");
        _ids = ids;
        _seqK = seqK;
        // An int, not the enum's bool meaning: kernel arguments must be blittable.
        _sorted = order == DocumentIdOrder.NonDecreasing ? 1 : 0;
    }

    /// <summary>With non-decreasing ids: the first key of the first query's document (a
    /// binary search); else 0.</summary>
    public int KeyStart(int batch, int head, int q0, int q1)
    {
        int qa = Math.Max(q0, 0);
        if (_sorted == 0 || qa >= Math.Min(q1, _seqK)) return 0;
        int row = batch * _seqK, id = _ids[row + qa], lo = 0, hi = qa;
        while (lo < hi) // first k in [0, qa] with ids[k] >= id
        {
            int mid = (lo + hi) >> 1;
            if (_ids[row + mid] < id) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>With non-decreasing ids: one past the last key of the last query's document;
    /// else int.MaxValue (0 when no query position is in [0, seqK)).</summary>
    public int KeyEnd(int batch, int head, int q0, int q1)
    {
        int qa = Math.Max(q0, 0), qb = Math.Min(q1, _seqK);
        if (qa >= qb) return 0;
        if (_sorted == 0) return int.MaxValue;
        int row = batch * _seqK, id = _ids[row + qb - 1], lo = qb, hi = _seqK;
        while (lo < hi) // first k in [qb, seqK] with ids[k] > id
        {
            int mid = (lo + hi) >> 1;
            if (_ids[row + mid] <= id) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>ids[b, q] == ids[b, k] for 0 &lt;= q &lt; seqK.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) =>
        (uint)q < (uint)_seqK && _ids[batch * _seqK + q] == _ids[batch * _seqK + k];

    /// <summary>With non-decreasing ids: Empty when the key tile's id range lies before or
    /// after the query tile's; Full when both tiles hold one and the same id; else Partial.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        int qa = Math.Max(q0, 0), qb = Math.Min(q1, _seqK);
        if (qa >= qb) return TileKind.Empty;
        if (_sorted == 0) return TileKind.Partial;
        int row = batch * _seqK;
        int qFirst = _ids[row + qa], qLast = _ids[row + qb - 1];
        int kFirst = _ids[row + k0], kLast = _ids[row + k1 - 1];
        if (kLast < qFirst || kFirst > qLast) return TileKind.Empty;
        return qa == q0 && qb == q1 && qFirst == qLast && kFirst == kLast && kFirst == qFirst
            ? TileKind.Full : TileKind.Partial;
    }

    /// <summary>The ids are missing (default: seqK 0).</summary>
    public string? ParameterError() => _seqK >= 1 ? null
        : VariantChecks.Missing("DocumentIdMask", "seqK", _seqK, "ids for >= 1 keys",
            isDefault: _seqK == 0);

    /// <summary>The table must be (batch, seqK) of the call; host ids declared non-decreasing
    /// must be.</summary>
    public void Validate(AttentionShape shape)
    {
        if (shape.SeqK != _seqK)
            throw new ArgumentException($"DocumentIdMask was built for seqK {_seqK}; the call has seqK {shape.SeqK}.", nameof(shape));
        long need = (long)shape.Batch * _seqK;
        if (_ids.Length < need)
            throw new ArgumentException(
                $"DocumentIdMask ids hold {_ids.Length} entries; batch {shape.Batch} x seqK {_seqK} = {need} are needed.", nameof(shape));
        if (_sorted != 0 && TIds.HostReadable)
            for (int i = 1; i < need; i++)
                if (i % _seqK != 0 && _ids[i] < _ids[i - 1])
                    throw new ArgumentException(
                        $"DocumentIdMask ids were declared non-decreasing, but ids[{i / _seqK}, {i % _seqK}] = {_ids[i]} < {_ids[i - 1]}.", nameof(shape));
    }
}
