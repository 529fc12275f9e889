using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>
/// Intersection of two masks (FlexAttention's and_masks): A(q, k) and B(q, k). Classify:
/// Empty if either is Empty, Full if both are Full, else Partial (sound; not tight when two
/// Partial tiles happen to be disjoint). Its parameters are its operands': a default operand
/// without meaning (<see cref="IValidated"/>) is rejected inside it as at top level.
/// </summary>
public readonly struct And<TA, TB>(TA a, TB b) : IMaskPredicate, IShapeDependent, IValidated
    where TA : struct, IMaskPredicate
    where TB : struct, IMaskPredicate
{
    /// <summary>Two intervals meet in one: max of the starts, min of the ends.</summary>
    public static bool RowIsInterval => TA.RowIsInterval && TB.RowIsInterval;

    private readonly TA _a = a;
    private readonly TB _b = b;

    /// <summary>Validates both operands.</summary>
    public void Validate(AttentionShape shape)
    {
        VariantChecks.Validate(_a, shape);
        VariantChecks.Validate(_b, shape);
    }

    /// <summary>The first operand's parameter error, else the second's.</summary>
    public string? ParameterError() =>
        VariantChecks.ParameterError(_a) ?? VariantChecks.ParameterError(_b);

    /// <summary>The later of the two starts.</summary>
    public int KeyStart(int batch, int head, int q0, int q1) =>
        MaskMath.Max(_a.KeyStart(batch, head, q0, q1), _b.KeyStart(batch, head, q0, q1));

    /// <summary>The earlier of the two ends.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) =>
        MaskMath.Min(_a.KeyEnd(batch, head, q0, q1), _b.KeyEnd(batch, head, q0, q1));

    /// <summary>A(q, k) and B(q, k)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) =>
        _a.Allows(batch, head, q, k) && _b.Allows(batch, head, q, k);

    /// <summary>Empty if either is Empty; Full if both are Full.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        var ka = _a.Classify(batch, head, q0, q1, k0, k1);
        if (ka == TileKind.Empty) return TileKind.Empty;
        var kb = _b.Classify(batch, head, q0, q1, k0, k1);
        if (kb == TileKind.Empty) return TileKind.Empty;
        return ka == TileKind.Full && kb == TileKind.Full ? TileKind.Full : TileKind.Partial;
    }
}

/// <summary>
/// Union of two masks (FlexAttention's or_masks): A(q, k) or B(q, k). Classify: Full if
/// either is Full, Empty if both are Empty, else Partial. Operands are validated as in
/// <see cref="And{TA, TB}"/>.
/// </summary>
public readonly struct Or<TA, TB>(TA a, TB b) : IMaskPredicate, IShapeDependent, IValidated
    where TA : struct, IMaskPredicate
    where TB : struct, IMaskPredicate
{
    private readonly TA _a = a;
    private readonly TB _b = b;

    /// <summary>Validates both operands.</summary>
    public void Validate(AttentionShape shape)
    {
        VariantChecks.Validate(_a, shape);
        VariantChecks.Validate(_b, shape);
    }

    /// <summary>The first operand's parameter error, else the second's.</summary>
    public string? ParameterError() =>
        VariantChecks.ParameterError(_a) ?? VariantChecks.ParameterError(_b);

    /// <summary>The earlier of the two starts.</summary>
    public int KeyStart(int batch, int head, int q0, int q1) =>
        MaskMath.Min(_a.KeyStart(batch, head, q0, q1), _b.KeyStart(batch, head, q0, q1));

    /// <summary>The later of the two ends.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) =>
        MaskMath.Max(_a.KeyEnd(batch, head, q0, q1), _b.KeyEnd(batch, head, q0, q1));

    /// <summary>A(q, k) or B(q, k)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) =>
        _a.Allows(batch, head, q, k) || _b.Allows(batch, head, q, k);

    /// <summary>Full if either is Full; Empty if both are Empty.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        var ka = _a.Classify(batch, head, q0, q1, k0, k1);
        if (ka == TileKind.Full) return TileKind.Full;
        var kb = _b.Classify(batch, head, q0, q1, k0, k1);
        if (kb == TileKind.Full) return TileKind.Full;
        return ka == TileKind.Empty && kb == TileKind.Empty ? TileKind.Empty : TileKind.Partial;
    }
}

/// <summary>Complement of a mask: not M(q, k). Classify swaps Empty and Full; Partial stays.
/// The operand is validated as in <see cref="And{TA, TB}"/>.</summary>
public readonly struct Not<T>(T mask) : IMaskPredicate, IShapeDependent, IValidated
    where T : struct, IMaskPredicate
{
    private readonly T _mask = mask;

    /// <summary>Validates the operand.</summary>
    public void Validate(AttentionShape shape) => VariantChecks.Validate(_mask, shape);

    /// <summary>The operand's parameter error.</summary>
    public string? ParameterError() => VariantChecks.ParameterError(_mask);

    /// <summary>0 (no bound)</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>int.MaxValue (no bound)</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => int.MaxValue;

    /// <summary>not M(q, k)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) => !_mask.Allows(batch, head, q, k);

    /// <summary>Empty &lt;-&gt; Full, Partial unchanged.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        _mask.Classify(batch, head, q0, q1, k0, k1) switch
        {
            TileKind.Empty => TileKind.Full,
            TileKind.Full => TileKind.Empty,
            _ => TileKind.Partial,
        };
}
