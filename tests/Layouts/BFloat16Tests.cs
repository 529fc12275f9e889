using System.Runtime.CompilerServices;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Layouts;
using Xunit;

namespace Managed.Tests.Layouts;

/// <summary>
/// <see cref="BFloat16"/> against bit patterns: a hand-picked table, a property over float bit
/// patterns against an independent reference (nearest of the two neighbouring bfloat16 values
/// found with double arithmetic), and all 65536 bfloat16 patterns exhaustively.
/// </summary>
public sealed class BFloat16Tests
{
    /// <summary>(float bits, expected bfloat16 bits).</summary>
    public static TheoryData<uint, ushort> Table() => new()
    {
        { 0x3F80_0000, 0x3F80 },   // 1
        { 0xBF80_0000, 0xBF80 },   // -1
        { 0x3F80_8000, 0x3F80 },   // tie, even below: down
        { 0x3F81_8000, 0x3F82 },   // tie, odd below: up
        { 0xBF80_8000, 0xBF80 },   // negative ties mirror
        { 0xBF81_8000, 0xBF82 },
        { 0x3F80_7FFF, 0x3F80 },   // just below a tie
        { 0x3F80_8001, 0x3F81 },   // just above a tie
        { 0x3FFF_8000, 0x4000 },   // carry into the exponent
        { 0x7F7F_0000, 0x7F7F },   // MaxValue exactly
        { 0x7F7F_7FFF, 0x7F7F },   // just below MaxValue + half ulp
        { 0x7F7F_8000, 0x7F80 },   // tie at MaxValue (odd mantissa): +inf
        { 0x7F7F_FFFF, 0x7F80 },   // float.MaxValue: +inf
        { 0xFF7F_FFFF, 0xFF80 },   // float.MinValue: -inf
        { 0x7F80_0000, 0x7F80 },   // +inf
        { 0xFF80_0000, 0xFF80 },   // -inf
        { 0x0000_0000, 0x0000 },   // +0
        { 0x8000_0000, 0x8000 },   // -0
        { 0x0000_0001, 0x0000 },   // float.Epsilon: rounds to +0
        { 0x8000_0001, 0x8000 },   // -float.Epsilon: -0
        { 0x0001_0000, 0x0001 },   // smallest bfloat16 subnormal, exact
        { 0x0000_8000, 0x0000 },   // half of it: tie to even (0)
        { 0x0000_8001, 0x0001 },   // just above: up
        { 0x0001_8000, 0x0002 },   // tie, odd below: up
        { 0x007F_FFFF, 0x0080 },   // largest float subnormal rounds to the smallest normal
        { 0x7FC0_0000, 0x7FC0 },   // quiet NaN
        { 0xFFC0_0000, 0xFFC0 },   // float.NaN (sign set) keeps its sign
        { 0x7F80_0001, 0x7FC0 },   // signalling NaN, payload only in low bits: quiet, not inf
        { 0xFF80_0001, 0xFFC0 },
        { 0x7FBF_FFFF, 0x7FFF },   // signalling NaN, top payload kept, quiet bit set
        { 0x7FFF_FFFF, 0x7FFF },   // NaN whose bits would carry when rounded: not rounded
        { 0x7F81_0000, 0x7FC1 },
    };

    /// <summary>Conversion of each table entry.</summary>
    [Theory]
    [MemberData(nameof(Table))]
    public void FromSingleMatchesTable(uint floatBits, ushort expected)
    {
        var actual = (BFloat16)BitConverter.UInt32BitsToSingle(floatBits);
        Assert.Equal($"0x{expected:X4}", $"0x{actual.Bits:X4}");
    }

    /// <summary>Round to nearest even, from the definition: of the two bfloat16 values
    /// around |x| (truncation and the next one up, whose value is 2^128 past MaxValue),
    /// the nearer, the even one on a tie; NaN keeps its sign and top payload, made quiet.
    /// Shares no code or bit tricks with the library.</summary>
    internal static ushort Reference(uint bits)
    {
        float x = BitConverter.UInt32BitsToSingle(bits);
        ushort sign = (ushort)(bits >> 31 << 15);
        if (float.IsNaN(x)) return (ushort)((bits >> 16) | 0x40);
        double magnitude = Math.Abs((double)x);
        int below = (int)((bits & 0x7FFF_FFFF) / 65536);   // truncated magnitude pattern
        double low = Value(below), high = Value(below + 1);
        double toLow = magnitude - low, toHigh = high - magnitude;
        int chosen = toLow < toHigh ? below : toHigh < toLow ? below + 1
            : below % 2 == 0 ? below : below + 1;
        if (chosen > 0x7F80) chosen = 0x7F80;   // +inf stays +inf
        return (ushort)(sign | chosen);

        static double Value(int pattern) =>
            pattern >= 0x7F80 ? Math.Pow(2, 128) // the next value after MaxValue
            : (pattern >> 7) == 0 ? (pattern & 0x7F) * Math.Pow(2, -133)
            : (1 + (pattern & 0x7F) / 128.0) * Math.Pow(2, (pattern >> 7) - 127);
    }

    /// <summary>The reference agrees with the table (checks the checker).</summary>
    [Theory]
    [MemberData(nameof(Table))]
    public void ReferenceMatchesTable(uint floatBits, ushort expected) =>
        Assert.Equal(expected, Reference(floatBits));

    /// <summary>Conversion equals the reference for random float bit patterns.</summary>
    [Property(MaxTest = 20_000)]
    public Property FromSingleMatchesReference() =>
        Prop.ForAll(FloatBitsGen.Bits.ToArbitrary(), bits =>
            BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(bits)).Bits == Reference(bits));

    /// <summary>Every 4099th float bit pattern (about a million, all exponents, both signs)
    /// against the reference.</summary>
    [Fact]
    public void FromSingleMatchesReferenceOnBitSweep()
    {
        for (ulong b = 0; b <= uint.MaxValue; b += 4099)
        {
            uint bits = (uint)b;
            ushort actual = BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(bits)).Bits;
            if (actual != Reference(bits))
                Assert.Fail($"0x{bits:X8}: 0x{actual:X4}, reference 0x{Reference(bits):X4}");
        }
    }

    /// <summary>All 65536 patterns: widening is bits &lt;&lt; 16, and narrowing the widened
    /// value gives the pattern back (a signalling NaN comes back quiet).</summary>
    [Fact]
    public void AllPatternsRoundTrip()
    {
        for (int p = 0; p <= 0xFFFF; p++)
        {
            var value = BFloat16.FromBits((ushort)p);
            float wide = (float)value;
            Assert.Equal((uint)p << 16, BitConverter.SingleToUInt32Bits(wide));
            int expected = BFloat16.IsNaN(value) ? p | 0x40 : p;
            Assert.Equal(expected, ((BFloat16)wide).Bits);
            Assert.Equal(float.IsNaN(wide), BFloat16.IsNaN(value));
            Assert.Equal(float.IsInfinity(wide), BFloat16.IsInfinity(value));
            Assert.Equal(float.IsFinite(wide), BFloat16.IsFinite(value));
            Assert.Equal((double)wide, (double)value);
        }
    }

    /// <summary>== is IEEE (NaN unequal to itself, +0 == -0); Equals and GetHashCode
    /// follow Half (NaN equals NaN), consistently.</summary>
    [Fact]
    public void EqualitySemanticsFollowHalf()
    {
        var nan = BFloat16.NaN;
        var otherNaN = BFloat16.FromBits(0x7F81);
#pragma warning disable CS1718 // comparison to the same variable is the point
        Assert.False(nan == nan);
        Assert.True(nan != nan);
#pragma warning restore CS1718
        Assert.True(nan.Equals(otherNaN));
        Assert.Equal(nan.GetHashCode(), otherNaN.GetHashCode());
        Assert.True(BFloat16.Zero == BFloat16.NegativeZero);
        Assert.True(BFloat16.Zero.Equals(BFloat16.NegativeZero));
        Assert.Equal(BFloat16.Zero.GetHashCode(), BFloat16.NegativeZero.GetHashCode());
        Assert.False(BFloat16.One.Equals((object)1f));
        Assert.True(BFloat16.One.Equals((object)BFloat16.FromBits(0x3F80)));
        Assert.NotEqual(BFloat16.One, BFloat16.FromBits(0x3F81));
        Assert.Equal(Half.NaN.Equals(Half.NaN), nan.Equals(nan));
        Assert.Equal(Half.NaN == Half.NaN, nan == BFloat16.NaN);
    }

    /// <summary>Constants have their documented patterns and values.</summary>
    [Fact]
    public void ConstantsHaveTheirPatterns()
    {
        Assert.Equal(1f, (float)BFloat16.One);
        Assert.Equal(MathF.Pow(2, -133), (float)BFloat16.Epsilon);
        Assert.Equal((2 - MathF.Pow(2, -7)) * MathF.Pow(2, 127), (float)BFloat16.MaxValue);
        Assert.Equal(-(float)BFloat16.MaxValue, (float)BFloat16.MinValue);
        Assert.Equal(float.PositiveInfinity, (float)BFloat16.PositiveInfinity);
        Assert.Equal(float.NegativeInfinity, (float)BFloat16.NegativeInfinity);
        Assert.Equal(float.NaN.GetHashCode(), float.NaN.GetHashCode());
        Assert.Equal(((BFloat16)float.NaN).Bits, BFloat16.NaN.Bits);
        Assert.True(float.IsNegative((float)BFloat16.NegativeZero));
    }

    /// <summary>ToString is float's; the struct is two blittable bytes.</summary>
    [Fact]
    public void ToStringAndLayout()
    {
        Assert.Equal("1", BFloat16.One.ToString());
        Assert.Equal("-0", BFloat16.NegativeZero.ToString());
        Assert.Equal("3.140625", ((BFloat16)3.14159f).ToString());
        Assert.Equal("NaN", BFloat16.NaN.ToString());
        Assert.Equal(2, Unsafe.SizeOf<BFloat16>());
        Assert.False(RuntimeHelpers.IsReferenceOrContainsReferences<BFloat16>());
    }
}
