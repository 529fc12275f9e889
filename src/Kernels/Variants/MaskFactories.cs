namespace Managed.Kernels.Variants;

/// <summary>
/// Combinators with their mask types inferred, so a composed mask is written
/// <c>Masks.And(new CausalMask(), SlidingWindowMask.Causal(512))</c> instead of spelling
/// <c>And&lt;CausalMask, SlidingWindowMask&gt;</c>.
/// </summary>
public static class Masks
{
    /// <summary>a(q, k) and b(q, k); see <see cref="And{TA, TB}"/>.</summary>
    public static And<TA, TB> And<TA, TB>(TA a, TB b)
        where TA : struct, IMaskPredicate
        where TB : struct, IMaskPredicate => new(a, b);

    /// <summary>a(q, k) or b(q, k); see <see cref="Or{TA, TB}"/>.</summary>
    public static Or<TA, TB> Or<TA, TB>(TA a, TB b)
        where TA : struct, IMaskPredicate
        where TB : struct, IMaskPredicate => new(a, b);

    /// <summary>Not mask(q, k); see <see cref="Not{T}"/>.</summary>
    public static Not<T> Not<T>(T mask) where T : struct, IMaskPredicate => new(mask);
}
