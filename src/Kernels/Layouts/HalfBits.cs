using ILGPU;

namespace Managed.Kernels.Layouts;

/// <summary>
/// IEEE binary16 conversions on raw ushort patterns, in integer arithmetic that ILGPU
/// translates on every backend. System.Half's own operators use <c>Unsafe.BitCast</c>, which
/// ILGPU 1.5.3 rejects ("Not supported intrinsic type 'BitCast'"), and ILGPU.Half needs
/// cl_khr_fp16 on OpenCL and converts inexactly on the CPU accelerator. Results equal
/// System.Half's bit for bit (checked for all 2^32 floats), NaN payloads included.
/// </summary>
internal static class HalfBits
{
    /// <summary>binary16 bits → float, exact; a NaN keeps its sign and payload and is made
    /// quiet, as System.Half (and PTX's cvt.f32.f16) do.</summary>
    public static float ToSingle(ushort bits)
    {
        int sign = (bits & 0x8000) << 16;
        int exponent = (bits >> 10) & 0x1F;
        int mantissa = bits & 0x3FF;
        if (exponent == 0x1F)   // ∞ or NaN: the payload moves to the top of float's mantissa
        {
            int quiet = mantissa != 0 ? 0x0040_0000 : 0;
            return BitConverter.Int32BitsToSingle(
                sign | 0x7F80_0000 | quiet | (mantissa << 13));
        }
        if (exponent != 0)      // normal: rebias 15 → 127
            return BitConverter.Int32BitsToSingle(
                sign | ((exponent + 112) << 23) | (mantissa << 13));
        float magnitude = mantissa * (1f / 16777216f);   // subnormal: mantissa·2^-24, exact
        return sign != 0 ? -magnitude : magnitude;
    }

    /// <summary>
    /// <see cref="ToSingle"/> without branches, for kernels: the 15 magnitude bits moved to
    /// float's exponent and mantissa fields and scaled by 2^112 (exact for normal and
    /// subnormal values: a power of two, no rounding, no overflow), then ∞ and NaN selected.
    /// </summary>
    public static float Widen(uint bits)
    {
        uint magnitude = bits & 0x7FFF, mantissa = bits & 0x3FF;
        float scaled = Interop.IntAsFloat(magnitude << 13) * TwoTo112;
        uint special = 0x7F80_0000u | (mantissa << 13) | (mantissa != 0 ? 0x0040_0000u : 0u);
        uint widened = magnitude >= 0x7C00 ? special : Interop.FloatAsInt(scaled);
        return Interop.IntAsFloat(widened | ((bits & 0x8000) << 16));
    }

    /// <summary>2^112: float exponent bias 127 minus binary16's 15.</summary>
    private const float TwoTo112 = 5.192296858534828E+33f;

    /// <summary>float → binary16 bits, round to nearest even; overflow to ±∞; a NaN keeps
    /// its sign and top 10 payload bits and is made quiet, as System.Half does.</summary>
    public static ushort FromSingle(float value)
    {
        int bits = BitConverter.SingleToInt32Bits(value);
        int sign = (bits >> 16) & 0x8000;
        int abs = bits & 0x7FFF_FFFF;
        if (abs > 0x7F80_0000) return (ushort)(sign | 0x7E00 | ((abs >> 13) & 0x3FF));
        if (abs >= 0x477F_F000) return (ushort)(sign | 0x7C00);   // >= 65520: ∞
        if (abs >= 0x3880_0000)
        {
            // Normal result: rebias 127 → 15, then round the 13 dropped bits to nearest even.
            int rebiased = abs - 0x3800_0000;
            rebiased += 0xFFF + ((rebiased >> 13) & 1);
            return (ushort)(sign | (rebiased >> 13));
        }
        if (abs <= 0x3300_0000) return (ushort)sign;   // <= 2^-25 (a tie with 0): ±0
        // Subnormal result: the float's 24-bit significand shifted right by 14..24 places.
        int significand = (abs & 0x7F_FFFF) | 0x80_0000;
        int shift = 126 - (abs >> 23);
        int result = significand >> shift;
        int rest = significand & ((1 << shift) - 1);
        int halfway = 1 << (shift - 1);
        if (rest > halfway || (rest == halfway && (result & 1) != 0)) result++;
        return (ushort)(sign | result);
    }
}
