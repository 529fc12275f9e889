using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Simd;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.Simd;

/// <summary>
/// <see cref="VectorMath.Tanh(ReadOnlySpan{float}, Span{float})"/> against tanh rounded to
/// float (1 ulp) and MathF.Tanh (2 ulps, see AssertWithinOneUlp), NaN for NaN. Inputs go through in chunks of 31 floats, so every chunk
/// exercises the Vector512 loop (16), the Vector256 loop (8) and the scalar tail (7).
/// </summary>
public sealed class VectorMathProperties
{
    /// <summary>Every 509th float bit pattern of each sign, from 0 to infinity, NaNs included.</summary>
    [Fact]
    public void TanhIsWithinOneUlpOverDenseSweep()
    {
        var values = new List<float>();
        for (long bits = 0; bits <= 0x7FFF_FFFF; bits += 509)
        {
            float x = BitConverter.Int32BitsToSingle((int)bits);
            values.Add(x);
            values.Add(-x);
        }
        AssertWithinOneUlp(values.ToArray(), "dense sweep");
    }

    /// <summary>Edges: the series/exp switch at 1/16, where tanh rounds to 1, specials.</summary>
    [Fact]
    public void TanhIsWithinOneUlpAtEdges()
    {
        float[] edges =
        [
            0f, -0f, float.Epsilon, 1e-30f, 1e-8f, 1e-4f, 1e-3f, 0.0625f, 0.5f, 1f, 8.5f, 9f, 9.1f, 10f,
            20f, 44f, 89f, 355f, 710f, 1e10f, float.MaxValue, float.PositiveInfinity, float.NaN,
            BitConverter.Int32BitsToSingle(0x7FC0_1234), BitConverter.Int32BitsToSingle(0x0000_0001),
            BitConverter.Int32BitsToSingle(0x007F_FFFF),
        ];
        var values = new List<float>();
        foreach (var e in edges)
            for (int d = -3; d <= 3; d++)
            {
                float x = float.IsFinite(e) && e != 0f ? BitConverter.Int32BitsToSingle(
                    BitConverter.SingleToInt32Bits(e) + d) : e;
                values.Add(x);
                values.Add(-x);
            }
        AssertWithinOneUlp(values.ToArray(), "edges");
        var special = new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, float.MaxValue };
        var result = new float[special.Length];
        VectorMath.Tanh(special, result);
        Assert.True(float.IsNaN(result[0]));
        Assert.Equal(1f, result[1]);
        Assert.Equal(-1f, result[2]);
        Assert.True(float.IsNegative(result[3]) && result[3] == 0f, "tanh(-0) must be -0");
        Assert.Equal(1f, result[4]);
    }

    /// <summary>Random bit patterns (any magnitude, NaNs) and random values in [-12, 12].</summary>
    [Property(MaxTest = 300)]
    public Property TanhIsWithinOneUlpForRandomValues() =>
        Prop.ForAll(
            Gen.Frequency(
                (1, Gen.Choose(int.MinValue, int.MaxValue).Select(BitConverter.Int32BitsToSingle)),
                (1, Gen.Choose(-1_200_000, 1_200_000).Select(i => i / 100_000f)),
                (1, Gen.Choose(-1_000_000, 1_000_000).Select(i => i / 1e7f)))
            .ArrayOf().ToArbitrary(),
            xs => AssertWithinOneUlp(xs, $"[{string.Join(", ", xs.Select(x => x.ToString("R")))}]"));

    /// <summary>In place gives the same as out of place.</summary>
    [Fact]
    public void TanhInPlaceEqualsOutOfPlace()
    {
        var x = Enumerable.Range(0, 100).Select(i => (i - 50) / 7f).ToArray();
        var copy = new float[x.Length];
        VectorMath.Tanh(x, copy);
        VectorMath.Tanh(x);
        Assert.Equal(copy, x);
        Assert.Throws<ArgumentException>(() => VectorMath.Tanh(new float[3], new float[2]));
    }

    /// <summary>
    /// Each result must be within 1 ulp of tanh rounded to float (Math.Tanh in double, then
    /// rounded: correctly rounded but for rare double-rounding ties) and within 2 ulps of
    /// MathF.Tanh. Not 1 ulp of MathF.Tanh: on Linux that is glibc's tanhf, whose documented
    /// error is up to 2 ulps (e.g. tanhf(0.53618) is 2 ulps from the correctly rounded
    /// 0.49009094), so an exact tanh differs from it by 2 ulps there.
    /// </summary>
    private static void AssertWithinOneUlp(float[] xs, string context)
    {
        var result = new float[xs.Length];
        for (int i = 0; i < xs.Length; i += 31)
        {
            int n = Math.Min(31, xs.Length - i);
            VectorMath.Tanh(xs.AsSpan(i, n), result.AsSpan(i, n));
        }
        for (int i = 0; i < xs.Length; i++)
        {
            float exact = (float)Math.Tanh(xs[i]), libm = MathF.Tanh(xs[i]);
            bool ok = float.IsNaN(exact) ? float.IsNaN(result[i])
                : Ulps(result[i], exact) <= 1 && Ulps(result[i], libm) <= 2;
            if (!ok)
                throw new XunitException(
                    $"tanh({xs[i]:R}) = {result[i]:R}, rounded Math.Tanh = {exact:R} "
                    + $"({Ulps(result[i], exact)} ulps), MathF.Tanh = {libm:R} ({Ulps(result[i], libm)} ulps). "
                    + (context.Length > 2000 ? "" : context));
        }
    }

    /// <summary>Distance in representable floats (-0 and +0 are the same point).</summary>
    private static long Ulps(float a, float b) => Math.Abs(Ordered(a) - Ordered(b));

    private static long Ordered(float x)
    {
        int bits = BitConverter.SingleToInt32Bits(x);
        return bits < 0 ? -(long)(bits & int.MaxValue) : bits;
    }
}
