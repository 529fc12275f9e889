using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Managed.Kernels.Matmul;

/// <summary>
/// Loads 2 x Count stored weights and widens them to two float vectors in registers, for the
/// host kernels; one struct per SIMD width, picked with the matching <c>ISimd</c>. bfloat16 is
/// a 16-bit shift; binary16 is rebiased by a multiply by 2^112 (exact, subnormals included),
/// with infinities and NaNs (made quiet) patched in: bit-exact with <see cref="Half"/>'s
/// widening.
/// </summary>
internal unsafe interface IWidening<TV> where TV : unmanaged
{
    /// <summary>Elements [0, 2 Count) of float storage.</summary>
    static abstract (TV Lo, TV Hi) Float(float* p);

    /// <summary>Elements [0, 2 Count) of bfloat16 bit patterns.</summary>
    static abstract (TV Lo, TV Hi) BFloat16(ushort* p);

    /// <summary>Elements [0, 2 Count) of binary16 bit patterns.</summary>
    static abstract (TV Lo, TV Hi) Half(ushort* p);
}

internal readonly unsafe struct Widen512 : IWidening<Vector512<float>>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector512<float> Lo, Vector512<float> Hi) Float(float* p) =>
        (Vector512.Load(p), Vector512.Load(p + 16));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector512<float> Lo, Vector512<float> Hi) BFloat16(ushort* p)
    {
        var (lo, hi) = Vector512.Widen(Vector512.Load(p));
        return ((lo << 16).AsSingle(), (hi << 16).AsSingle());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector512<float> Lo, Vector512<float> Hi) Half(ushort* p)
    {
        var (lo, hi) = Vector512.Widen(Vector512.Load(p));
        return (HalfLanes(lo), HalfLanes(hi));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> HalfLanes(Vector512<uint> h)
    {
        var magnitude = h & Vector512.Create(0x7FFFu);
        var shifted = magnitude << 13;
        var scaled = (shifted.AsSingle() * Vector512.Create(HalfScale.Rebias)).AsUInt32();
        // The sign bit from h << 16, the rest from scaled: one bitwise select.
        var signMask = Vector512.Create(0x8000_0000u);
        // Weights are finite: infinities and NaNs take the patch-up only where present.
        if (!Vector512.GreaterThanOrEqualAny(magnitude, Vector512.Create(0x7C00u)))
            return Vector512.ConditionalSelect(signMask, h << 16, scaled).AsSingle();
        var sign = (h << 16) & signMask;
        var special = shifted | Vector512.Create(0x7F80_0000u)
            | (Vector512.GreaterThan(magnitude, Vector512.Create(0x7C00u))
                & Vector512.Create(0x0040_0000u));
        var isSpecial = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x7C00u));
        return (Vector512.ConditionalSelect(isSpecial, special, scaled) | sign).AsSingle();
    }
}

internal readonly unsafe struct Widen256 : IWidening<Vector256<float>>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<float> Lo, Vector256<float> Hi) Float(float* p) =>
        (Vector256.Load(p), Vector256.Load(p + 8));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<float> Lo, Vector256<float> Hi) BFloat16(ushort* p)
    {
        var (lo, hi) = Vector256.Widen(Vector256.Load(p));
        return ((lo << 16).AsSingle(), (hi << 16).AsSingle());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<float> Lo, Vector256<float> Hi) Half(ushort* p)
    {
        var (lo, hi) = Vector256.Widen(Vector256.Load(p));
        return (HalfLanes(lo), HalfLanes(hi));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> HalfLanes(Vector256<uint> h)
    {
        var magnitude = h & Vector256.Create(0x7FFFu);
        var shifted = magnitude << 13;
        var scaled = (shifted.AsSingle() * Vector256.Create(HalfScale.Rebias)).AsUInt32();
        // The sign bit from h << 16, the rest from scaled: one bitwise select.
        var signMask = Vector256.Create(0x8000_0000u);
        // Weights are finite: infinities and NaNs take the patch-up only where present.
        if (!Vector256.GreaterThanOrEqualAny(magnitude, Vector256.Create(0x7C00u)))
            return Vector256.ConditionalSelect(signMask, h << 16, scaled).AsSingle();
        var sign = (h << 16) & signMask;
        var special = shifted | Vector256.Create(0x7F80_0000u)
            | (Vector256.GreaterThan(magnitude, Vector256.Create(0x7C00u))
                & Vector256.Create(0x0040_0000u));
        var isSpecial = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x7C00u));
        return (Vector256.ConditionalSelect(isSpecial, special, scaled) | sign).AsSingle();
    }
}

internal readonly unsafe struct Widen128 : IWidening<Vector128<float>>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector128<float> Lo, Vector128<float> Hi) Float(float* p) =>
        (Vector128.Load(p), Vector128.Load(p + 4));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector128<float> Lo, Vector128<float> Hi) BFloat16(ushort* p)
    {
        var (lo, hi) = Vector128.Widen(Vector128.Load(p));
        return ((lo << 16).AsSingle(), (hi << 16).AsSingle());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector128<float> Lo, Vector128<float> Hi) Half(ushort* p)
    {
        var (lo, hi) = Vector128.Widen(Vector128.Load(p));
        return (HalfLanes(lo), HalfLanes(hi));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> HalfLanes(Vector128<uint> h)
    {
        var magnitude = h & Vector128.Create(0x7FFFu);
        var shifted = magnitude << 13;
        var scaled = (shifted.AsSingle() * Vector128.Create(HalfScale.Rebias)).AsUInt32();
        // The sign bit from h << 16, the rest from scaled: one bitwise select.
        var signMask = Vector128.Create(0x8000_0000u);
        // Weights are finite: infinities and NaNs take the patch-up only where present.
        if (!Vector128.GreaterThanOrEqualAny(magnitude, Vector128.Create(0x7C00u)))
            return Vector128.ConditionalSelect(signMask, h << 16, scaled).AsSingle();
        var sign = (h << 16) & signMask;
        var special = shifted | Vector128.Create(0x7F80_0000u)
            | (Vector128.GreaterThan(magnitude, Vector128.Create(0x7C00u))
                & Vector128.Create(0x0040_0000u));
        var isSpecial = Vector128.GreaterThanOrEqual(magnitude, Vector128.Create(0x7C00u));
        return (Vector128.ConditionalSelect(isSpecial, special, scaled) | sign).AsSingle();
    }
}

internal static class HalfScale
{
    /// <summary>2^112 (the literal rounds to it exactly): moves binary16's exponent bias (15)
    /// to float's (127). A constant, not a static readonly: methods compiled with
    /// AggressiveOptimization would load it on every use.</summary>
    public const float Rebias = 5.192296858534828E+33f;
}
