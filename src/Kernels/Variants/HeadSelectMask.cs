using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>
/// Per-head choice between two masks from a flag array (DuoAttention, catalog H2: retrieval
/// heads get full (causal) attention, streaming heads sinks + a window): head h uses
/// <typeparamref name="TSet"/> where flags[h] != 0, else <typeparamref name="TClear"/>.
/// Flags all set gives the set mask exactly. The two masks are validated as at top level; a
/// default instance has no flags and is rejected against the call's heads.
/// </summary>
public readonly struct HeadSelectMask<TSet, TClear, TFlags> : IMaskPredicate, IShapeDependent,
    IValidated
    where TSet : struct, IMaskPredicate
    where TClear : struct, IMaskPredicate
    where TFlags : struct, ITable<int>
{
    private readonly TFlags _flags;
    private readonly TSet _set;
    private readonly TClear _clear;

    /// <summary>Head h uses <paramref name="set"/> where flags[h] != 0, else <paramref name="clear"/>.</summary>
    public HeadSelectMask(TFlags flags, TSet set, TClear clear)
    {
        _flags = flags;
        _set = set;
        _clear = clear;
    }

    /// <summary>The head's mask's bound.</summary>
    public int KeyStart(int batch, int head, int q0, int q1) =>
        _flags[head] != 0 ? _set.KeyStart(batch, head, q0, q1) : _clear.KeyStart(batch, head, q0, q1);

    /// <summary>The head's mask's bound.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) =>
        _flags[head] != 0 ? _set.KeyEnd(batch, head, q0, q1) : _clear.KeyEnd(batch, head, q0, q1);

    /// <summary>The head's mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) =>
        _flags[head] != 0 ? _set.Allows(batch, head, q, k) : _clear.Allows(batch, head, q, k);

    /// <summary>The head's mask's classification.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        _flags[head] != 0 ? _set.Classify(batch, head, q0, q1, k0, k1)
            : _clear.Classify(batch, head, q0, q1, k0, k1);

    /// <summary>The set mask's parameter error, else the clear mask's.</summary>
    public string? ParameterError() =>
        VariantChecks.ParameterError(_set) ?? VariantChecks.ParameterError(_clear);

    /// <summary>One flag per query head is needed.</summary>
    public void Validate(AttentionShape shape)
    {
        if (_flags.Length < shape.Heads)
            throw new ArgumentException(
                $"HeadSelectMask flags hold {_flags.Length} entries; the call has {shape.Heads} heads.", nameof(shape));
        VariantChecks.Validate(_set, shape);
        VariantChecks.Validate(_clear, shape);
    }
}
