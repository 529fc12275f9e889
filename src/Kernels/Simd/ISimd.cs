using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Managed.Kernels.Simd;

/// <summary>
/// One SIMD width as a type, so a CPU kernel is written once and the JIT specializes it for
/// Vector512, Vector256 or Vector128 (picked at run time from what the CPU accelerates).
/// </summary>
internal unsafe interface ISimd<TV> where TV : unmanaged
{
    static abstract int Count { get; }
    static abstract TV Load(float* p);
    static abstract void Store(TV v, float* p);
    static abstract TV Broadcast(float x);
    /// <summary>a * b + c, fused.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    static abstract TV Mul(TV a, TV b);
    static abstract TV Add(TV a, TV b);
    static abstract TV Sub(TV a, TV b);
    /// <summary>
    /// Lane-wise max with the platform's NaN rule (x86: b where either is NaN), so a NaN may be
    /// dropped: callers must not rely on it for NaN propagation.
    /// </summary>
    static abstract TV Max(TV a, TV b);
    /// <summary>
    /// e^a in float arithmetic (<see cref="ExpConstants"/> has the method): at most 2 ulps from
    /// e^a rounded to float for every a in [-104, 0] (checked by ExpProperties against
    /// Math.Exp, denormal results included; the largest error seen there is 1.0 ulp), exactly 0
    /// for a &lt;= -104 and for -infinity,
    /// NaN for NaN. Accurate up to a = 88 too, and +infinity above e^a's float range.
    /// </summary>
    static abstract TV Exp(TV a);
    /// <summary>Max of the lanes, with <see cref="Max"/>'s NaN rule.</summary>
    static abstract float MaxAcross(TV a);
    /// <summary>The sum of the lanes: halves added lane-wise down to 4 lanes, then
    /// (x0 + x1) + (x2 + x3), so it equals each lane of <see cref="SumAcross4"/> bit for bit.
    /// </summary>
    static abstract float SumAcross(TV a);
    /// <summary>[SumAcross(a), SumAcross(b), SumAcross(c), SumAcross(d)], the four reduced
    /// together (two horizontal adds for four vectors instead of two each).</summary>
    static abstract Vector128<float> SumAcross4(TV a, TV b, TV c, TV d);
}

internal readonly unsafe struct Simd512 : ISimd<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    public static Vector512<float> Load(float* p) => Vector512.Load(p);
    public static void Store(Vector512<float> v, float* p) => v.Store(p);
    public static Vector512<float> Broadcast(float x) => Vector512.Create(x);
    public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Vector512.FusedMultiplyAdd(a, b, c);
    public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);
    public static Vector512<float> Exp(Vector512<float> a)
    {
        if (!Avx512F.IsSupported) return ExpPortable(a);
        // vmaxps/vminps return the second operand when either is NaN, so NaN passes through.
        var x = Avx512F.Min(Vector512.Create(ExpConstants.MaxArgument),
            Avx512F.Max(Vector512.Create(ExpConstants.MinArgument), a));
        var k = Vector512.FusedMultiplyAdd(x, Vector512.Create(ExpConstants.Log2E),
            Vector512.Create(ExpConstants.RoundMagic)) - Vector512.Create(ExpConstants.RoundMagic);
        // vscalefps: p * 2^k with one rounding, denormal results included.
        return Avx512F.Scale(ExpPolynomial(x, k), k);
    }

    /// <summary>Exp without AVX-512 instructions (clamps with IEEE min/max, scales in two steps).</summary>
    internal static Vector512<float> ExpPortable(Vector512<float> a)
    {
        var x = Vector512.Min(Vector512.Max(a, Vector512.Create(ExpConstants.MinArgument)),
            Vector512.Create(ExpConstants.MaxArgument));
        var k = Vector512.FusedMultiplyAdd(x, Vector512.Create(ExpConstants.Log2E),
            Vector512.Create(ExpConstants.RoundMagic)) - Vector512.Create(ExpConstants.RoundMagic);
        var ki = Vector512.ConvertToInt32(k);
        var k1 = ki >> 1;
        var s1 = (k1 + Vector512.Create(127)) << 23;
        var s2 = (ki - k1 + Vector512.Create(127)) << 23;
        return ExpPolynomial(x, k) * s1.AsSingle() * s2.AsSingle();
    }

    /// <summary>e^r for r = x - k ln2 (Cody-Waite), |r| &lt;= ln2 / 2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ExpPolynomial(Vector512<float> x, Vector512<float> k)
    {
        var r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-ExpConstants.Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-ExpConstants.Ln2Lo), r);
        var p = Vector512.Create(ExpConstants.C7);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(ExpConstants.C6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(ExpConstants.C5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(ExpConstants.C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(ExpConstants.C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(ExpConstants.C2));
        return Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
    }
    public static float MaxAcross(Vector512<float> a) =>
        Simd256.MaxAcross(Vector256.MaxNative(a.GetLower(), a.GetUpper()));
    public static float SumAcross(Vector512<float> a) =>
        Simd256.SumAcross(a.GetLower() + a.GetUpper());
    public static Vector128<float> SumAcross4(Vector512<float> a, Vector512<float> b,
        Vector512<float> c, Vector512<float> d) =>
        Simd256.SumAcross4(a.GetLower() + a.GetUpper(), b.GetLower() + b.GetUpper(),
            c.GetLower() + c.GetUpper(), d.GetLower() + d.GetUpper());
}

internal readonly unsafe struct Simd256 : ISimd<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;
    public static Vector256<float> Load(float* p) => Vector256.Load(p);
    public static void Store(Vector256<float> v, float* p) => v.Store(p);
    public static Vector256<float> Broadcast(float x) => Vector256.Create(x);
    public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Vector256.FusedMultiplyAdd(a, b, c);
    public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);
    public static Vector256<float> Exp(Vector256<float> a)
    {
        // IEEE min/max propagate NaN; scaling by 2^k in two steps keeps denormal results.
        var x = Vector256.Min(Vector256.Max(a, Vector256.Create(ExpConstants.MinArgument)),
            Vector256.Create(ExpConstants.MaxArgument));
        var k = Vector256.FusedMultiplyAdd(x, Vector256.Create(ExpConstants.Log2E),
            Vector256.Create(ExpConstants.RoundMagic)) - Vector256.Create(ExpConstants.RoundMagic);
        var r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-ExpConstants.Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-ExpConstants.Ln2Lo), r);
        var p = Vector256.Create(ExpConstants.C7);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(ExpConstants.C6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(ExpConstants.C5));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(ExpConstants.C4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(ExpConstants.C3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(ExpConstants.C2));
        p = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        var ki = Vector256.ConvertToInt32(k);
        var k1 = ki >> 1;
        var s1 = (k1 + Vector256.Create(127)) << 23;
        var s2 = (ki - k1 + Vector256.Create(127)) << 23;
        return p * s1.AsSingle() * s2.AsSingle();
    }
    public static float MaxAcross(Vector256<float> a) =>
        Simd128.MaxAcross(Vector128.MaxNative(a.GetLower(), a.GetUpper()));
    public static float SumAcross(Vector256<float> a) =>
        Simd128.SumAcross(a.GetLower() + a.GetUpper());
    public static Vector128<float> SumAcross4(Vector256<float> a, Vector256<float> b,
        Vector256<float> c, Vector256<float> d) =>
        Simd128.SumAcross4(a.GetLower() + a.GetUpper(), b.GetLower() + b.GetUpper(),
            c.GetLower() + c.GetUpper(), d.GetLower() + d.GetUpper());
}

internal readonly unsafe struct Simd128 : ISimd<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;
    public static Vector128<float> Load(float* p) => Vector128.Load(p);
    public static void Store(Vector128<float> v, float* p) => v.Store(p);
    public static Vector128<float> Broadcast(float x) => Vector128.Create(x);
    public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        Vector128.FusedMultiplyAdd(a, b, c);
    public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => a * b;
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
    public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);
    public static Vector128<float> Exp(Vector128<float> a)
    {
        // IEEE min/max propagate NaN; scaling by 2^k in two steps keeps denormal results.
        var x = Vector128.Min(Vector128.Max(a, Vector128.Create(ExpConstants.MinArgument)),
            Vector128.Create(ExpConstants.MaxArgument));
        var k = Vector128.FusedMultiplyAdd(x, Vector128.Create(ExpConstants.Log2E),
            Vector128.Create(ExpConstants.RoundMagic)) - Vector128.Create(ExpConstants.RoundMagic);
        var r = Vector128.FusedMultiplyAdd(k, Vector128.Create(-ExpConstants.Ln2Hi), x);
        r = Vector128.FusedMultiplyAdd(k, Vector128.Create(-ExpConstants.Ln2Lo), r);
        var p = Vector128.Create(ExpConstants.C7);
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(ExpConstants.C6));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(ExpConstants.C5));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(ExpConstants.C4));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(ExpConstants.C3));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(ExpConstants.C2));
        p = Vector128.FusedMultiplyAdd(p, r * r, r) + Vector128<float>.One;
        var ki = Vector128.ConvertToInt32(k);
        var k1 = ki >> 1;
        var s1 = (k1 + Vector128.Create(127)) << 23;
        var s2 = (ki - k1 + Vector128.Create(127)) << 23;
        return p * s1.AsSingle() * s2.AsSingle();
    }
    public static float MaxAcross(Vector128<float> a)
    {
        a = Vector128.MaxNative(a, Vector128.Shuffle(a, Vector128.Create(2, 3, 0, 1)));
        return Vector128.MaxNative(a, Vector128.Shuffle(a, Vector128.Create(1, 0, 3, 2))).ToScalar();
    }
    public static float SumAcross(Vector128<float> a) =>
        (a.GetElement(0) + a.GetElement(1)) + (a.GetElement(2) + a.GetElement(3));
    public static Vector128<float> SumAcross4(Vector128<float> a, Vector128<float> b,
        Vector128<float> c, Vector128<float> d)
    {
        // haddps pairs adjacent lanes: [a0+a1, a2+a3, b0+b1, b2+b3], then the pairs' sums.
        if (Sse3.IsSupported)
            return Sse3.HorizontalAdd(Sse3.HorizontalAdd(a, b), Sse3.HorizontalAdd(c, d));
        return Vector128.Create(SumAcross(a), SumAcross(b), SumAcross(c), SumAcross(d));
    }
}

/// <summary>
/// Constants of the float exp of <see cref="ISimd{TV}.Exp"/>: e^x = 2^k e^r with
/// k = round(x log2(e)) and r = x - k ln2 (Cody-Waite: ln2 = Ln2Hi + Ln2Lo, Ln2Hi with 9
/// significant bits so k Ln2Hi is exact for |k| &lt; 2^15), e^r = 1 + r + r^2 (C2 + C3 r + ...
/// + C7 r^5) on |r| &lt;= ln2/2 with Cephes' expf coefficients (about 1e-7 relative), then 2^k
/// applied with one rounding. x is clamped to [MinArgument, MaxArgument] first: below -104,
/// e^x is under half the smallest denormal, so the result is 0 (and -infinity gives 0, not
/// NaN); above 89 the result is +infinity.
/// </summary>
internal static class ExpConstants
{
    public const float MinArgument = -104f, MaxArgument = 89f;
    public const float Log2E = 1.44269504088896341f;
    public const float RoundMagic = 12582912f; // 1.5 * 2^23: x + magic - magic rounds to an integer
    public const float Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    public const float C2 = 5.0000001201e-1f, C3 = 1.6666665459e-1f, C4 = 4.1665795894e-2f,
        C5 = 8.3334519073e-3f, C6 = 1.3981999507e-3f, C7 = 1.9875691500e-4f;
}

/// <summary>The SIMD widths a CPU kernel can run with.</summary>
public enum SimdWidth : byte
{
    /// <summary>Widest the CPU accelerates.</summary>
    Auto,
    /// <summary>Vector512 (AVX-512).</summary>
    V512,
    /// <summary>Vector256 (AVX2).</summary>
    V256,
    /// <summary>Vector128 (SSE, NEON; software where neither).</summary>
    V128,
}

internal static class SimdSelect
{
    public static SimdWidth Resolve(SimdWidth w) => w switch
    {
        SimdWidth.Auto when Vector512.IsHardwareAccelerated => SimdWidth.V512,
        SimdWidth.Auto when Vector256.IsHardwareAccelerated => SimdWidth.V256,
        SimdWidth.Auto => SimdWidth.V128,
        _ => w,
    };
}
