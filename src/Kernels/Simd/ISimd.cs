using System.Runtime.Intrinsics;

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
    static abstract TV Max(TV a, TV b);
    static abstract TV Exp(TV a);
    static abstract float MaxAcross(TV a);
    static abstract float SumAcross(TV a);
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
    public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    public static Vector512<float> Exp(Vector512<float> a) => Vector512.Exp(a);
    public static float MaxAcross(Vector512<float> a) =>
        Simd256.MaxAcross(Vector256.Max(a.GetLower(), a.GetUpper()));
    public static float SumAcross(Vector512<float> a) => Vector512.Sum(a);
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
    public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    public static Vector256<float> Exp(Vector256<float> a) => Vector256.Exp(a);
    public static float MaxAcross(Vector256<float> a) =>
        Simd128.MaxAcross(Vector128.Max(a.GetLower(), a.GetUpper()));
    public static float SumAcross(Vector256<float> a) => Vector256.Sum(a);
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
    public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
    public static Vector128<float> Exp(Vector128<float> a) => Vector128.Exp(a);
    public static float MaxAcross(Vector128<float> a)
    {
        float m = a.GetElement(0);
        for (int i = 1; i < Vector128<float>.Count; i++) m = MathF.Max(m, a.GetElement(i));
        return m;
    }
    public static float SumAcross(Vector128<float> a) => Vector128.Sum(a);
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
