using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Layouts;
using Xunit;

namespace Managed.Tests.Layouts;

/// <summary>
/// <see cref="ElementConvert"/>'s span conversions (SIMD bodies plus scalar tails) equal the
/// scalar element operators bit for bit, on every length 0..70 (empty, tail only, one or two
/// vectors of 16 or 32 lanes, and ragged ends) and random bit patterns with NaN, ±∞, ±0 and
/// subnormals.
/// </summary>
public sealed class ElementConvertTests
{
    private static readonly Gen<uint[]> Patterns =
        from length in Gen.Choose(0, 70)
        from bits in FloatBitsGen.Bits.ArrayOf(length)
        select bits;

    /// <summary>Lengths 0..70 with random patterns, every conversion and direction.</summary>
    [Fact]
    public void EveryLengthMatchesScalar()
    {
        var random = new Random(1234);
        for (int length = 0; length <= 70; length++)
            for (int round = 0; round < 20; round++)
            {
                var bits = new uint[length];
                for (int i = 0; i < length; i++)
                    bits[i] = round % 2 == 0 ? (uint)random.NextInt64(0, 1L << 32)
                        : Edge(random);
                CheckAll(bits);
            }
    }

    /// <summary>Random arrays from the edge-weighted generator.</summary>
    [Property(MaxTest = 500)]
    public Property RandomArraysMatchScalar() =>
        Prop.ForAll(Patterns.ToArbitrary(), bits => { CheckAll(bits); return true; });

    /// <summary>A destination shorter than the source is rejected before anything is written;
    /// a longer one is written only up to the source's length.</summary>
    [Fact]
    public void DestinationLengthIsChecked()
    {
        Assert.Throws<ArgumentException>(
            () => ElementConvert.ToSingle(new BFloat16[3], new float[2]));
        Assert.Throws<ArgumentException>(
            () => ElementConvert.FromSingle(new float[3], new BFloat16[2]));
        Assert.Throws<ArgumentException>(
            () => ElementConvert.ToSingle(new Half[3], new float[2]));
        Assert.Throws<ArgumentException>(
            () => ElementConvert.FromSingle(new float[3], new Half[2]));
        var wide = new float[40];
        wide.AsSpan().Fill(7f);
        ElementConvert.ToSingle(new BFloat16[33], wide);
        Assert.Equal(0f, wide[32]);
        Assert.Equal(7f, wide[33]);
    }

    /// <summary>A NaN, infinity, zero, subnormal or tie pattern, either sign.</summary>
    private static uint Edge(Random random)
    {
        uint sign = (uint)random.Next(2) << 31;
        uint mantissa = (uint)random.Next(1, 0x80_0000);
        return sign | random.Next(6) switch
        {
            0 => 0x7F80_0000u | mantissa,                             // NaN
            1 => 0x7F80_0000u,                                        // infinity
            2 => 0u,                                                  // zero
            3 => mantissa,                                            // subnormal
            4 => (mantissa & 0x7FFF_0000u) | 0x3F00_8000u,            // bfloat16 tie
            _ => ((mantissa << 13) & 0x7FFF_E000u) | 0x1000u,         // binary16 tie
        };
    }

    private static void CheckAll(uint[] bits)
    {
        int n = bits.Length;
        var floats = bits.Select(b => BitConverter.UInt32BitsToSingle(b)).ToArray();

        var bf = new BFloat16[n];
        ElementConvert.FromSingle(floats, bf);
        for (int i = 0; i < n; i++)
            Expect(BFloat16Element.FromSingle(floats[i]).Bits, bf[i].Bits, "float→bf16", bits[i]);

        var bfSource = bits.Select(b => BFloat16.FromBits((ushort)(b >> 7))).ToArray();
        var fromBf = new float[n];
        ElementConvert.ToSingle(bfSource, fromBf);
        for (int i = 0; i < n; i++)
            Expect(BitConverter.SingleToUInt32Bits(BFloat16Element.ToSingle(bfSource[i])),
                BitConverter.SingleToUInt32Bits(fromBf[i]), "bf16→float", bfSource[i].Bits);

        var half = new Half[n];
        ElementConvert.FromSingle(floats, half);
        for (int i = 0; i < n; i++)
            Expect(BitConverter.HalfToUInt16Bits(Float16Element.FromSingle(floats[i])),
                BitConverter.HalfToUInt16Bits(half[i]), "float→half", bits[i]);

        var halfSource = bits.Select(b => BitConverter.UInt16BitsToHalf((ushort)(b >> 5)))
            .ToArray();
        var fromHalf = new float[n];
        ElementConvert.ToSingle(halfSource, fromHalf);
        for (int i = 0; i < n; i++)
            Expect(BitConverter.SingleToUInt32Bits(Float16Element.ToSingle(halfSource[i])),
                BitConverter.SingleToUInt32Bits(fromHalf[i]), "half→float",
                BitConverter.HalfToUInt16Bits(halfSource[i]));
    }

    private static void Expect(uint scalar, uint vector, string what, uint input)
    {
        if (scalar != vector)
            Assert.Fail($"{what} of 0x{input:X}: span 0x{vector:X}, scalar 0x{scalar:X}");
    }
}
