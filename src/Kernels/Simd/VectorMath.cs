using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Managed.Kernels.Simd;

/// <summary>
/// Elementwise float functions that are accurate to within an ulp of the correctly rounded
/// result, vectorized. They compute in double lanes and round once to float, so the float
/// result inherits none of the cancellation a float formula has near 0.
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
    public static void Tanh(Span<float> values) => Tanh(values, values);

    /// <summary>
    /// values[i] = outer * tanh(values[i] * inner) in one pass, the two products rounded in
    /// float as the scalar expression rounds them (soft-capping's row form).
    /// </summary>
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

    /// <summary>tanh of 8 double lanes (see the span overload for the method).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<double> Tanh(Vector512<double> x)
    {
        var a = Vector512.Abs(x);
        // NaN compares false here, so it takes the exp branch, where it propagates.
        var small = Vector512.LessThan(a, Vector512.Create(SeriesLimit));
        var e = Vector512.Exp(a + a);
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
        var e = Vector256.Exp(a + a);
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
