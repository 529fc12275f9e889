using System.Runtime.CompilerServices;

namespace Managed.Kernels.Variants;

/// <summary>
/// Packed documents of a fixed length L: k / L == q / L (a query sees only its own document).
/// Combine with <see cref="CausalMask"/> through <see cref="And{TA, TB}"/> for causal packing.
/// Negative positions see nothing. Classify is exact: a tile is Full when its queries and keys
/// lie in one and the same document, Empty when their document ranges do not meet.
/// Documents of varying length: <see cref="DocumentIdMask{TIds}"/> (per-token ids).
/// default(FixedDocumentMask) has no length (documents of 0 tokens): entry points reject it.
/// </summary>
public readonly struct FixedDocumentMask : IMaskPredicate, IValidated
{
    /// <summary>Row q is its document (empty for q &lt; 0).</summary>
    public static bool RowIsInterval => true;

    private readonly int _length;
    private readonly float _inverse;

    /// <summary>Documents of <paramref name="length"/> &gt;= 1 tokens.</summary>
    public FixedDocumentMask(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        _length = length;
        _inverse = 1f / length;
    }

    /// <summary>The length is missing (default) or &lt; 1.</summary>
    public string? ParameterError() => _length >= 1 ? null
        : VariantChecks.Missing(nameof(FixedDocumentMask), "length", _length,
            ">= 1 tokens per document",
            isDefault: _length == 0);

    /// <summary>The first key of the first query's document.</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => MaskMath.Max(q0, 0) / _length * _length;

    /// <summary>The end of the last query's document (0 when no query position is &gt;= 0).</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) =>
        q1 <= 0 ? 0 : MaskMath.Saturate(((long)(q1 - 1) / _length + 1) * _length);

    /// <summary>q &gt;= 0 and k / L == q / L</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) =>
        q >= 0 && MaskMath.Divide(k, _length, _inverse) == MaskMath.Divide(q, _length, _inverse);

    /// <summary>Exact over the tile's document ranges.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        if (q1 - 1 < 0) return TileKind.Empty;
        int qa = MaskMath.Max(q0, 0) / _length, qb = (q1 - 1) / _length;
        int ka = k0 / _length, kb = (k1 - 1) / _length;
        bool any = qa <= kb && ka <= qb;
        bool all = q0 >= 0 && qa == qb && ka == kb && qa == ka;
        return MaskMath.Kind(any, all);
    }
}
