using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Managed.Bench.Experiments;

/// <summary>
/// Exploratory: throughput of Vector512.Exp (what the kernel's online softmax calls) against a
/// float-only exp (Cody-Waite range reduction + degree-6 polynomial + exponent bits), to size
/// the softmax share of the kernel. Run with --exp.
/// </summary>
public static class ExpThroughput
{
    public static int Run()
    {
        var x = new float[64 * 1024]; // scores after max subtraction: (-20, 0]
        var rng = new Random(1);
        for (int i = 0; i < x.Length; i++) x[i] = -20f * rng.NextSingle();
        var y = new float[x.Length];
        // Let tiered compilation promote the BCL's non-inlined helpers (VectorMath.ExpSingle).
        for (int rep = 0; rep < 200; rep++) { Bcl(x, y); Poly(x, y); }
        Thread.Sleep(500);
        for (int rep = 0; rep < 200; rep++) { Bcl(x, y); Poly(x, y); }
        double bcl = Measure(x, y, useBcl: true), poly = Measure(x, y, useBcl: false);
        double maxRel = 0;
        for (int i = 0; i < x.Length; i += 16)
        {
            var v = Vector512.LoadUnsafe(ref x[i]);
            var a = Vector512.Exp(v);
            var b = PolynomialExp(v);
            for (int j = 0; j < 16; j++)
                maxRel = Math.Max(maxRel, Math.Abs(a[j] - b[j]) / Math.Max(a[j], 1e-30f));
        }
        Console.WriteLine($"Vector512.Exp: {bcl:F2} ns per 16 lanes; "
            + $"float polynomial: {poly:F2} ns "
            + $"per 16 lanes; max relative difference {maxRel:E1}");
        return 0;
    }

    private static double Measure(float[] x, float[] y, bool useBcl)
    {
        double best = double.MaxValue;
        for (int rep = 0; rep < 30; rep++)
        {
            long t0 = Stopwatch.GetTimestamp();
            if (useBcl) Bcl(x, y); else Poly(x, y);
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalNanoseconds / (x.Length / 16));
        }
        return best;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Bcl(float[] x, float[] y)
    {
        for (int i = 0; i < x.Length; i += 16)
            Vector512.Exp(Vector512.LoadUnsafe(ref x[i])).StoreUnsafe(ref y[i]);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Poly(float[] x, float[] y)
    {
        for (int i = 0; i < x.Length; i += 16)
            PolynomialExp(Vector512.LoadUnsafe(ref x[i])).StoreUnsafe(ref y[i]);
    }

    /// <summary>e^x = 2^k e^r, k = round(x log2 e), r = x - k ln 2 (two-part ln 2),
    /// e^r by a degree-6 Taylor/Horner polynomial; x below -87 flushes to 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> PolynomialExp(Vector512<float> x)
    {
        x = Vector512.Max(x, Vector512.Create(-87.3f));
        var k = Vector512.Round(x * Vector512.Create(1.44269504f));
        var r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-0.693359375f), x);
        r = Vector512.FusedMultiplyAdd(k, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.Create(1.3888889e-3f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3333333e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1666667e-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666667e-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f));
        var scale = (Vector512.ConvertToInt32(k) + Vector512.Create(127)) << 23;
        return p * scale.AsSingle();
    }
}
