using System.Runtime.Intrinsics;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Simd;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.Simd;

/// <summary>
/// The softmax's float exp (<see cref="ISimd{TV}.Exp"/>) at every SIMD width against Math.Exp
/// rounded to float: at most <see cref="MaxUlps"/> ulps over [-104, 0] (a dense sweep of the
/// float bit patterns there, an evenly spaced sweep, and random values), exactly 0 at and below
/// -104 and for -infinity, 1 for ±0, NaN for NaN. Ulps are measured in the exact result's
/// binade, 2^-149 for denormal results.
/// </summary>
public sealed unsafe class ExpProperties
{
    private const double MaxUlps = 2;

    /// <summary>Every 97th float bit pattern from -0 down to -104 (about 11.5 million values).</summary>
    [Fact]
    public void ExpIsWithinTwoUlpsOverDenseBitSweep()
    {
        const int from = unchecked((int)0x8000_0000);
        int to = BitConverter.SingleToInt32Bits(-104f);
        var values = new List<float>();
        for (long bits = from; bits <= to; bits += 97) values.Add(BitConverter.Int32BitsToSingle((int)bits));
        values.Add(-104f);
        AssertAccurate(values.ToArray(), "dense bit sweep");
    }

    /// <summary>4 million evenly spaced values of [-104, 0]: the bit sweep is thin far from 0.</summary>
    [Fact]
    public void ExpIsWithinTwoUlpsOverEvenSweep()
    {
        const int n = 4_000_000;
        var values = new float[n + 1];
        for (int i = 0; i <= n; i++) values[i] = (float)(-104.0 * i / n);
        AssertAccurate(values, "even sweep");
    }

    [Property(MaxTest = 300)]
    public Property ExpIsWithinTwoUlpsForRandomValues() =>
        Prop.ForAll(
            Gen.Frequency(
                (2, Gen.Choose(0, 104_000_000).Select(i => -i / 1_000_000f)),
                (1, Gen.Choose(0, 1_000_000).Select(i => -i / 1e7f)),
                (1, Gen.Choose(unchecked((int)0x8000_0000), BitConverter.SingleToInt32Bits(-104f))
                    .Select(BitConverter.Int32BitsToSingle)))
            .ArrayOf().ToArbitrary(),
            xs => AssertAccurate(xs, $"[{string.Join(", ", xs.Take(100).Select(x => x.ToString("R")))}]"));

    /// <summary>The arguments the softmax produces at its edges.</summary>
    [Fact]
    public void ExpSpecialValues()
    {
        float[] xs =
        [
            float.NegativeInfinity, -1e30f, -1000f, -104f, BitConverter.Int32BitsToSingle(
                BitConverter.SingleToInt32Bits(-104f) + 1), -103.97f, -103.9f, -87.34f, -87.33f,
            -0f, 0f, float.NaN, BitConverter.Int32BitsToSingle(unchecked((int)0xFFC0_1234)),
            -float.Epsilon, -1e-30f, 1f, 10f, 88f, 89f, 1000f, float.PositiveInfinity,
        ];
        foreach (var (name, ys) in AllWidths(xs))
            for (int i = 0; i < xs.Length; i++)
            {
                float x = xs[i], y = ys[i];
                bool ok = float.IsNaN(x) ? float.IsNaN(y)
                    : x <= -104f ? y == 0f && !float.IsNegative(y)
                    : x == 0f ? y == 1f
                    : x > 88.8f ? float.IsPositiveInfinity(y)
                    : UlpError(x, y) <= MaxUlps;
                if (!ok) throw new XunitException($"{name}: exp({x:R}) = {y:R}, Math.Exp = {Math.Exp(x):R}");
            }
    }

    private static void AssertAccurate(float[] xs, string context)
    {
        foreach (var (name, ys) in AllWidths(xs))
        {
            double worst = 0;
            int at = -1;
            for (int i = 0; i < xs.Length; i++)
            {
                double e = xs[i] <= -104f ? (ys[i] == 0f ? 0 : double.PositiveInfinity) : UlpError(xs[i], ys[i]);
                if (!(e <= worst)) { worst = e; at = i; }
            }
            if (!(worst <= MaxUlps))
                throw new XunitException(
                    $"{name}: exp({xs[at]:R}) = {ys[at]:R} is {worst:F2} ulps from Math.Exp = "
                    + $"{Math.Exp(xs[at]):R}. {(context.Length > 2000 ? "" : context)}");
        }
    }

    /// <summary>|y - e^x| in ulps of e^x's binade (2^-149 below the normal range).</summary>
    private static double UlpError(float x, float y)
    {
        double exact = Math.Exp(x);
        double ulp = exact < Math.ScaleB(1.0, -126) ? Math.ScaleB(1.0, -149)
            : Math.ScaleB(1.0, Math.ILogB(exact) - 23);
        return Math.Abs(y - exact) / ulp;
    }

    private static IEnumerable<(string Name, float[] Result)> AllWidths(float[] xs)
    {
        yield return ("V512", Run<Simd512, Vector512<float>>(xs));
        yield return ("V512 portable", Portable512(xs));
        yield return ("V256", Run<Simd256, Vector256<float>>(xs));
        yield return ("V128", Run<Simd128, Vector128<float>>(xs));
    }

    private static float[] Run<TOps, TV>(float[] xs) where TOps : struct, ISimd<TV> where TV : unmanaged
    {
        int n = TOps.Count, padded = (xs.Length + n - 1) / n * n;
        var input = new float[padded];
        var output = new float[padded];
        xs.CopyTo(input, 0);
        fixed (float* pi = input, po = output)
            for (int i = 0; i < padded; i += n) TOps.Store(TOps.Exp(TOps.Load(pi + i)), po + i);
        return output[..xs.Length];
    }

    private static float[] Portable512(float[] xs)
    {
        int padded = (xs.Length + 15) / 16 * 16;
        var input = new float[padded];
        var output = new float[padded];
        xs.CopyTo(input, 0);
        for (int i = 0; i < padded; i += 16)
            Simd512.ExpPortable(Vector512.Create(input.AsSpan(i))).CopyTo(output.AsSpan(i));
        return output[..xs.Length];
    }
}
