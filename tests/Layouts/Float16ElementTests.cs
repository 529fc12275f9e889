using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Layouts;
using Xunit;

namespace Managed.Tests.Layouts;

/// <summary>
/// <see cref="Float16Element"/>'s integer-only conversions equal System.Half's operators bit
/// for bit: exhaustively for binary16 → float, and for float → binary16 on random bit patterns
/// and a sweep (the full 2^32 was checked once while writing it; it takes about 90 s).
/// </summary>
public sealed class Float16ElementTests
{
    /// <summary>All 65536 binary16 patterns widen exactly as (float)Half does.</summary>
    [Fact]
    public void ToSingleMatchesHalfOnAllPatterns()
    {
        for (int p = 0; p <= 0xFFFF; p++)
        {
            var h = BitConverter.UInt16BitsToHalf((ushort)p);
            uint expected = BitConverter.SingleToUInt32Bits((float)h);
            uint actual = BitConverter.SingleToUInt32Bits(Float16Element.ToSingle(h));
            if (expected != actual)
                Assert.Fail($"0x{p:X4}: 0x{actual:X8}, (float)Half 0x{expected:X8}");
        }
    }

    /// <summary>The word widening kernels use (a scaled multiply and selects, no branches)
    /// equals (float)Half on all 65536 patterns, in both halves of a word.</summary>
    [Fact]
    public void WidenWordMatchesHalfOnAllPatterns()
    {
        for (uint p = 0; p <= 0xFFFF; p++)
        {
            var h = BitConverter.UInt16BitsToHalf((ushort)p);
            uint expected = BitConverter.SingleToUInt32Bits((float)h);
            uint low = BitConverter.SingleToUInt32Bits(
                Float16Element.WidenWord(0xABCD_0000u | p, 0));
            uint high = BitConverter.SingleToUInt32Bits(
                Float16Element.WidenWord((p << 16) | 0x1234u, 1));
            if (expected != low || expected != high)
                Assert.Fail($"0x{p:X4}: 0x{low:X8} / 0x{high:X8}, (float)Half 0x{expected:X8}");
        }
    }

    /// <summary>float → binary16 equals (Half)x on random bit patterns.</summary>
    [Property(MaxTest = 20_000)]
    public Property FromSingleMatchesHalf() =>
        Prop.ForAll(FloatBitsGen.Floats.ToArbitrary(), x =>
            BitConverter.HalfToUInt16Bits(Float16Element.FromSingle(x))
            == BitConverter.HalfToUInt16Bits((Half)x));

    /// <summary>Every 1021st float bit pattern (about 4 million) against (Half)x.</summary>
    [Fact]
    public void FromSingleMatchesHalfOnBitSweep()
    {
        for (ulong b = 0; b <= uint.MaxValue; b += 1021)
        {
            float x = BitConverter.UInt32BitsToSingle((uint)b);
            ushort actual = BitConverter.HalfToUInt16Bits(Float16Element.FromSingle(x));
            ushort expected = BitConverter.HalfToUInt16Bits((Half)x);
            if (actual != expected)
                Assert.Fail($"0x{b:X8}: 0x{actual:X4}, (Half) 0x{expected:X4}");
        }
    }

    /// <summary>Float32Element is the identity, NaN payloads included.</summary>
    [Property]
    public Property Float32IsIdentity() =>
        Prop.ForAll(FloatBitsGen.Bits.ToArbitrary(), bits =>
        {
            float x = BitConverter.UInt32BitsToSingle(bits);
            return BitConverter.SingleToUInt32Bits(Float32Element.ToSingle(x)) == bits
                && BitConverter.SingleToUInt32Bits(Float32Element.FromSingle(x)) == bits;
        });
}
