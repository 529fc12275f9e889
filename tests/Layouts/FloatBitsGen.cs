using FsCheck;
using FsCheck.Fluent;

namespace Managed.Tests.Layouts;

/// <summary>Float bit patterns for conversion properties: uniform over all 2^32, plus
/// patterns concentrated where rounding is delicate (16-bit ties, binary16 ties, the overflow
/// thresholds, NaNs with payloads, subnormals).</summary>
internal static class FloatBitsGen
{
    /// <summary>Any float bit pattern, edges weighted up.</summary>
    public static Gen<uint> Bits { get; } = Gen.Frequency(
        (4, Gen.Choose(int.MinValue, int.MaxValue).Select(i => (uint)i)),
        // bfloat16 ties and their neighbours: low half 0x7FFF, 0x8000, 0x8001
        (2, from hi in Gen.Choose(0, 0xFFFF)
            from lo in Gen.Elements(0x7FFF, 0x8000, 0x8001, 0x0000, 0xFFFF)
            select ((uint)hi << 16) | (uint)lo),
        // binary16 ties: 13 dropped bits exactly 0x1000, or one either side
        (2, from i in Gen.Choose(0, 0x7FFFF)
            from lo in Gen.Elements(0x0FFF, 0x1000, 0x1001)
            select ((uint)i << 13) | (uint)lo),
        // NaNs (any payload, either sign), infinities, subnormals
        (1, Gen.Choose(1, 0x7F_FFFF).Select(m => 0x7F80_0000u | (uint)m)),
        (1, Gen.Choose(1, 0x7F_FFFF).Select(m => 0xFF80_0000u | (uint)m)),
        (1, Gen.Choose(0, 0x7F_FFFF).Select(m => (uint)m)),
        (1, Gen.Elements(0x7F80_0000u, 0xFF80_0000u, 0x7F7F_FFFFu, 0x7F7F_8000u, 0x7F7F_7FFFu,
            0x477F_F000u, 0x477F_EFFFu, 0x3300_0000u, 0x3300_0001u, 0x3880_0000u, 0x387F_FFFFu,
            0x8000_0000u, 0u)));

    /// <summary><see cref="Bits"/> as floats.</summary>
    public static Gen<float> Floats { get; } = Bits.Select(b => BitConverter.UInt32BitsToSingle(b));
}
