using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Managed.Kernels.Simd;

/// <summary>
/// Elementwise float functions that are accurate to within an ulp of the correctly rounded
/// result, vectorized. They compute in double lanes and round once to float, so the float
/// result inherits none of the cancellation a float formula has near 0. The span methods run on
/// the CPU kernel's hot path (once per row of a tile): they are compiled optimized at once, as
/// tier-0 code of the vector tanh made soft-capping's first calls up to 20x slower.
/// </summary>
public static class VectorMath
{
    /// <summary>Below this |x| the odd Taylor series is used: 1 - 2/(e^2x + 1) cancels there.</summary>
    private const double SeriesLimit = 1.0 / 16;

    // Odd Taylor coefficients of tanh: x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835. The first
    // omitted term, 1382 x^11 / 155925, is below 8e-15 relative for |x| < 1/16.
    private const double C3 = -1.0 / 3, C5 = 2.0 / 15, C7 = -17.0 / 315, C9 = 62.0 / 2835;

    /// <summary>
    /// destination[i] = tanh(x[i]), within an ulp of <see cref="MathF.Tanh"/>: computed in
    /// double as sign(x) (1 - 2 / (e^(2|x|) + 1)) for |x| &gt;= 1/16 and as the odd Taylor
    /// polynomial through x^9 below, then rounded to float. NaN stays NaN, ±infinity gives ±1,
    /// and large |x| gives ±1 (e^(2|x|) = infinity makes 2 / (e + 1) = 0, no overflow).
    /// <paramref name="destination"/> may be <paramref name="x"/> itself (in place).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than
    /// <paramref name="x"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tanh(ReadOnlySpan<float> x, Span<float> destination)
    {
        if (destination.Length < x.Length)
            throw new ArgumentException(
                $"destination ({destination.Length}) is shorter than x ({x.Length}).", nameof(destination));
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Create(x.Slice(i)));
                Vector512.Narrow(Tanh(lo), Tanh(hi)).CopyTo(destination.Slice(i));
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create(x.Slice(i)));
                Vector256.Narrow(Tanh(lo), Tanh(hi)).CopyTo(destination.Slice(i));
            }
        }
        for (; i < x.Length; i++) destination[i] = (float)Math.Tanh(x[i]);
    }

    /// <summary>tanh in place: <c>Tanh(values, values)</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tanh(Span<float> values) => Tanh(values, values);

    /// <summary>
    /// values[i] = outer * tanh(values[i] * inner) in one pass, the two products rounded in
    /// float as the scalar expression rounds them (soft-capping's row form).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ScaledTanh(Span<float> values, float inner, float outer)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vi = Vector512.Create(inner);
            var vo = Vector512.Create(outer);
            for (; i <= values.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Create((ReadOnlySpan<float>)values.Slice(i)) * vi);
                (vo * Vector512.Narrow(Tanh(lo), Tanh(hi))).CopyTo(values.Slice(i));
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var vi = Vector256.Create(inner);
            var vo = Vector256.Create(outer);
            for (; i <= values.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create((ReadOnlySpan<float>)values.Slice(i)) * vi);
                (vo * Vector256.Narrow(Tanh(lo), Tanh(hi))).CopyTo(values.Slice(i));
            }
        }
        for (; i < values.Length; i++) values[i] = outer * (float)Math.Tanh(values[i] * inner);
    }

    /// <summary>values[i] *= factor (the score modifiers' row form; TensorPrimitives would run
    /// tier-0 code for its first calls).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Multiply(Span<float> values, float factor)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= values.Length - Vector512<float>.Count; i += Vector512<float>.Count)
                (Vector512.Create((ReadOnlySpan<float>)values.Slice(i)) * factor)
                    .CopyTo(values.Slice(i));
        if (Vector256.IsHardwareAccelerated)
            for (; i <= values.Length - Vector256<float>.Count; i += Vector256<float>.Count)
                (Vector256.Create((ReadOnlySpan<float>)values.Slice(i)) * factor)
                    .CopyTo(values.Slice(i));
        for (; i < values.Length; i++) values[i] *= factor;
    }

    /// <summary>values[i] += addend (as <see cref="Multiply"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Add(Span<float> values, float addend)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var a = Vector512.Create(addend);
            for (; i <= values.Length - Vector512<float>.Count; i += Vector512<float>.Count)
                (Vector512.Create((ReadOnlySpan<float>)values.Slice(i)) + a)
                    .CopyTo(values.Slice(i));
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var a = Vector256.Create(addend);
            for (; i <= values.Length - Vector256<float>.Count; i += Vector256<float>.Count)
                (Vector256.Create((ReadOnlySpan<float>)values.Slice(i)) + a)
                    .CopyTo(values.Slice(i));
        }
        for (; i < values.Length; i++) values[i] += addend;
    }

    // e^y = 2^k e^r, k = round(y / ln 2), r = y - k ln 2 (|r| <= ln 2 / 2, ln 2 in two parts),
    // e^r by its Taylor polynomial through r^12 (the first omitted term is below 2e-16
    // relative). Not Vector512.Exp: its double kernel (System.Runtime.Intrinsics.VectorMath.
    // ExpDouble) is too large to inline and ran as tier-0 code for the first 30 calls.
    private const double Log2E = 1.4426950408889634, Ln2Hi = 6.93147180369123816490e-01,
        Ln2Lo = 1.90821492927058770002e-10, RoundMagic = 6755399441055744.0, MaxExpArgument = 708;

    // 1 / n!, the Taylor coefficients of e^r.
    private const double E2 = 1.0 / 2, E3 = 1.0 / 6, E4 = 1.0 / 24, E5 = 1.0 / 120, E6 = 1.0 / 720,
        E7 = 1.0 / 5040, E8 = 1.0 / 40320, E9 = 1.0 / 362880, E10 = 1.0 / 3628800,
        E11 = 1.0 / 39916800, E12 = 1.0 / 479001600;

    /// <summary>
    /// e^y for y &gt;= 0 (NaN for NaN; y above 708, +infinity included, gives e^708, which
    /// tanh only uses as "large"), to about 2e-16 relative.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<double> ExpOfPositive(Vector512<double> y)
    {
        var x = Vector512.Min(y, Vector512.Create(MaxExpArgument));
        // k in the low mantissa bits of k + 1.5 * 2^52, rounded to nearest.
        var shifted = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E),
            Vector512.Create(RoundMagic));
        var k = shifted - Vector512.Create(RoundMagic);
        var r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.Create(E12);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E11));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E10));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E9));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E8));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E7));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<double>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<double>.One);
        var scale = (shifted.AsUInt64() + Vector512.Create(1023UL)) << 52;
        return Vector512.ConditionalSelect(Vector512.Equals(y, y), p * scale.AsDouble(), y);
    }

    /// <summary>e^y for y &gt;= 0, as the Vector512 overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> ExpOfPositive(Vector256<double> y)
    {
        var x = Vector256.Min(y, Vector256.Create(MaxExpArgument));
        var shifted = Vector256.FusedMultiplyAdd(x, Vector256.Create(Log2E),
            Vector256.Create(RoundMagic));
        var k = shifted - Vector256.Create(RoundMagic);
        var r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.Create(E12);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E11));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E10));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E9));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E8));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E7));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E5));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(E2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<double>.One);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<double>.One);
        var scale = (shifted.AsUInt64() + Vector256.Create(1023UL)) << 52;
        return Vector256.ConditionalSelect(Vector256.Equals(y, y), p * scale.AsDouble(), y);
    }

    /// <summary>tanh of 8 double lanes (see the span overload for the method).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<double> Tanh(Vector512<double> x)
    {
        var a = Vector512.Abs(x);
        // NaN compares false here, so it takes the exp branch, where it propagates.
        var small = Vector512.LessThan(a, Vector512.Create(SeriesLimit));
        var e = ExpOfPositive(a + a);
        var large = Vector512<double>.One - Vector512.Create(2.0) / (e + Vector512<double>.One);
        var x2 = x * x;
        var poly = Vector512.Create(C9);
        poly = Vector512.FusedMultiplyAdd(poly, x2, Vector512.Create(C7));
        poly = Vector512.FusedMultiplyAdd(poly, x2, Vector512.Create(C5));
        poly = Vector512.FusedMultiplyAdd(poly, x2, Vector512.Create(C3));
        var series = Vector512.FusedMultiplyAdd(poly * x2, x, x); // odd: keeps -0
        return Vector512.ConditionalSelect(small, series, Vector512.CopySign(large, x));
    }

    /// <summary>tanh of 4 double lanes (see the span overload for the method).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<double> Tanh(Vector256<double> x)
    {
        var a = Vector256.Abs(x);
        var small = Vector256.LessThan(a, Vector256.Create(SeriesLimit));
        var e = ExpOfPositive(a + a);
        var large = Vector256<double>.One - Vector256.Create(2.0) / (e + Vector256<double>.One);
        var x2 = x * x;
        var poly = Vector256.Create(C9);
        poly = Vector256.FusedMultiplyAdd(poly, x2, Vector256.Create(C7));
        poly = Vector256.FusedMultiplyAdd(poly, x2, Vector256.Create(C5));
        poly = Vector256.FusedMultiplyAdd(poly, x2, Vector256.Create(C3));
        var series = Vector256.FusedMultiplyAdd(poly * x2, x, x);
        return Vector256.ConditionalSelect(small, series, Vector256.CopySign(large, x));
    }
}
