using System.Runtime.InteropServices;

namespace Managed.Kernels.Layouts;

/// <summary>
/// bfloat16: the top 16 bits of an IEEE 754 binary32 (1 sign, 8 exponent, 7 mantissa bits), a
/// storage type for keys, values and weights that halves their memory traffic while keeping
/// float's range. Kernels load it and widen it to float in registers
/// (<see cref="BFloat16Element"/>); arithmetic is never done in bfloat16. Conversions follow
/// <see cref="Half"/>'s conventions: float to BFloat16 is explicit (it rounds) and BFloat16 to
/// float is explicit too, though it is exact. Every member is safe in ILGPU kernels.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 2)]
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    private readonly ushort _bits;

    private BFloat16(ushort bits) => _bits = bits;

    /// <summary>The raw bit pattern: bits 31..16 of the float this value widens to.</summary>
    public ushort Bits => _bits;

    /// <summary>The value whose raw bit pattern is <paramref name="bits"/> (no rounding).</summary>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>+0 (0x0000).</summary>
    public static BFloat16 Zero => new(0x0000);

    /// <summary>-0 (0x8000).</summary>
    public static BFloat16 NegativeZero => new(0x8000);

    /// <summary>1 (0x3F80).</summary>
    public static BFloat16 One => new(0x3F80);

    /// <summary>The smallest positive subnormal, 2^-133 (0x0001).</summary>
    public static BFloat16 Epsilon => new(0x0001);

    /// <summary>The largest finite value, (2 - 2^-7)·2^127 ≈ 3.39e38 (0x7F7F).</summary>
    public static BFloat16 MaxValue => new(0x7F7F);

    /// <summary>The most negative finite value, -(2 - 2^-7)·2^127 (0xFF7F).</summary>
    public static BFloat16 MinValue => new(0xFF7F);

    /// <summary>+∞ (0x7F80).</summary>
    public static BFloat16 PositiveInfinity => new(0x7F80);

    /// <summary>-∞ (0xFF80).</summary>
    public static BFloat16 NegativeInfinity => new(0xFF80);

    /// <summary>The quiet NaN that float.NaN converts to (0xFFC0: its sign is set, as in
    /// float.NaN).</summary>
    public static BFloat16 NaN => new(0xFFC0);

    /// <summary>True when the exponent is all ones and the mantissa is not zero.</summary>
    public static bool IsNaN(BFloat16 value) => (value._bits & 0x7FFF) > 0x7F80;

    /// <summary>True for +∞ and -∞.</summary>
    public static bool IsInfinity(BFloat16 value) => (value._bits & 0x7FFF) == 0x7F80;

    /// <summary>True when the value is neither NaN nor infinite.</summary>
    public static bool IsFinite(BFloat16 value) => (value._bits & 0x7FFF) < 0x7F80;

    /// <summary>
    /// float → bfloat16, rounding to nearest with ties to even (the IEEE default, and what
    /// PyTorch and CUDA's <c>__float2bfloat16_rn</c> do). Values at or above
    /// MaxValue + half an ulp become ±∞; subnormals round like normals (bfloat16 has float's
    /// exponent range); a NaN stays a NaN with its sign and top 7 payload bits, made quiet.
    /// </summary>
    public static BFloat16 FromSingle(float value) => new(BFloat16Bits.FromSingle(value));

    /// <summary>bfloat16 → float, exact: the bits shifted left by 16.</summary>
    public static float ToSingle(BFloat16 value) => BFloat16Bits.ToSingle(value._bits);

    /// <summary>Rounds <paramref name="value"/> to nearest, ties to even
    /// (<see cref="FromSingle"/>).</summary>
    public static explicit operator BFloat16(float value) => FromSingle(value);

    /// <summary>Widens exactly (<see cref="ToSingle"/>). Explicit, as Half's is.</summary>
    public static explicit operator float(BFloat16 value) => ToSingle(value);

    /// <summary>Widens exactly to double, through float.</summary>
    public static explicit operator double(BFloat16 value) => ToSingle(value);

    /// <summary>IEEE equality: NaN is unequal to everything, itself included; +0 == -0.</summary>
    public static bool operator ==(BFloat16 left, BFloat16 right) =>
        ToSingle(left) == ToSingle(right);

    /// <summary>IEEE inequality: the negation of <c>==</c>.</summary>
    public static bool operator !=(BFloat16 left, BFloat16 right) =>
        ToSingle(left) != ToSingle(right);

    /// <summary>
    /// Equality as <see cref="Half.Equals(Half)"/> defines it: like <c>==</c>, except that
    /// every NaN equals every NaN, so values can be used as dictionary keys.
    /// </summary>
    public bool Equals(BFloat16 other) => this == other || (IsNaN(this) && IsNaN(other));

    /// <summary><see cref="Equals(BFloat16)"/> for a boxed BFloat16; false for other
    /// types.</summary>
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <summary>A hash consistent with <see cref="Equals(BFloat16)"/>: all NaNs hash alike,
    /// and so do +0 and -0.</summary>
    public override int GetHashCode() =>
        IsNaN(this) ? 0x7FC0 : (_bits & 0x7FFF) == 0 ? 0 : _bits;

    /// <summary>The value as float formats it (the shortest string that round-trips the
    /// float, which also identifies the bfloat16).</summary>
    public override string ToString() => ToSingle(this).ToString();
}

/// <summary>
/// Bit-level bfloat16 conversions on raw ushort patterns, written with integer operations that
/// ILGPU translates on every backend (no <c>Unsafe.BitCast</c>, no throw).
/// </summary>
internal static class BFloat16Bits
{
    /// <summary>float → bfloat16 bits, round to nearest even; NaN made quiet.</summary>
    public static ushort FromSingle(float value)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
            return (ushort)((bits >> 16) | 0x0040u);   // truncating could turn a NaN into ∞
        // Adding 0x7FFF plus the kept lsb rounds to nearest even; a carry out of the
        // mantissa bumps the exponent, which is also how MaxValue rounds up to ∞.
        bits += 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)(bits >> 16);
    }

    /// <summary>bfloat16 bits → float, exact.</summary>
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
}
