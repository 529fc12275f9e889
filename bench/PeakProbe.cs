using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Managed.Bench;

/// <summary>Measured FMA throughput of this CPU, the ceiling every result is compared with.
/// </summary>
public readonly record struct Peak(double PerCoreGflops, double AllCoresGflops, int Threads,
    int VectorBits)
{
    public override string ToString() =>
        $"{PerCoreGflops:F1} GFLOP/s on 1 thread, {AllCoresGflops:F1} GFLOP/s on {Threads} threads"
        + $" (Vector{VectorBits} FMA)";
}

/// <summary>
/// FMA throughput probe: 12 independent accumulator chains of Vector512 (or the widest
/// accelerated vector) FMAs, enough to cover FMA latency x issue width (Zen 5: 4 cycles x 2 pipes),
/// on 1 thread and on every core at once. 1 FMA = 2 FLOP per lane.
/// </summary>
public static class PeakProbe
{
    private const int Chains = 12;

    public static Peak Measure(int threads, double seconds = 0.5)
    {
        int bits = Vector512.IsHardwareAccelerated ? 512
            : Vector256.IsHardwareAccelerated ? 256 : 128;
        Run(1, 1 << 16, bits); // JIT and warm-up
        double one = Best(1, seconds, bits);
        double all = Best(threads, seconds, bits);
        return new Peak(one, all, threads, bits);
    }

    private static double Best(int threads, double seconds, int bits)
    {
        long iterations = 1 << 22;
        double best = 0;
        var total = Stopwatch.StartNew();
        while (total.Elapsed.TotalSeconds < seconds || best == 0)
        {
            double t = Run(threads, iterations, bits);
            if (t < 0.05) { iterations *= 2; continue; }
            // FLOP = threads x iterations x chains x lanes x 2
            double flop = threads * (double)iterations * Chains * (bits / 32) * 2;
            best = Math.Max(best, flop / t / 1e9);
        }
        return best;
    }

    private static double Run(int threads, long iterations, int bits)
    {
        var sink = new float[threads];
        using var start = new Barrier(threads + 1);
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() =>
            {
                start.SignalAndWait();
                sink[id] = bits switch
                {
                    512 => Chain512(iterations),
                    256 => Chain256(iterations),
                    _ => Chain128(iterations),
                };
            });
            workers[t].Start();
        }
        start.SignalAndWait();
        var sw = Stopwatch.StartNew();
        foreach (var w in workers) w.Join();
        double elapsed = sw.Elapsed.TotalSeconds;
        GC.KeepAlive(sink);
        return elapsed;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chain512(long iterations)
    {
        var m = Vector512.Create(0.999999f);
        var a = Vector512.Create(1e-7f);
        Vector512<float> x0 = Vector512.Create(1f), x1 = x0 + a, x2 = x1 + a, x3 = x2 + a;
        Vector512<float> x4 = x3 + a, x5 = x4 + a, x6 = x5 + a, x7 = x6 + a;
        Vector512<float> x8 = x7 + a, x9 = x8 + a, x10 = x9 + a, x11 = x10 + a;
        for (long i = 0; i < iterations; i++)
        {
            x0 = Vector512.FusedMultiplyAdd(x0, m, a); x1 = Vector512.FusedMultiplyAdd(x1, m, a);
            x2 = Vector512.FusedMultiplyAdd(x2, m, a); x3 = Vector512.FusedMultiplyAdd(x3, m, a);
            x4 = Vector512.FusedMultiplyAdd(x4, m, a); x5 = Vector512.FusedMultiplyAdd(x5, m, a);
            x6 = Vector512.FusedMultiplyAdd(x6, m, a); x7 = Vector512.FusedMultiplyAdd(x7, m, a);
            x8 = Vector512.FusedMultiplyAdd(x8, m, a); x9 = Vector512.FusedMultiplyAdd(x9, m, a);
            x10 = Vector512.FusedMultiplyAdd(x10, m, a);
            x11 = Vector512.FusedMultiplyAdd(x11, m, a);
        }
        return Vector512.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chain256(long iterations)
    {
        var m = Vector256.Create(0.999999f);
        var a = Vector256.Create(1e-7f);
        Vector256<float> x0 = Vector256.Create(1f), x1 = x0 + a, x2 = x1 + a, x3 = x2 + a;
        Vector256<float> x4 = x3 + a, x5 = x4 + a, x6 = x5 + a, x7 = x6 + a;
        Vector256<float> x8 = x7 + a, x9 = x8 + a, x10 = x9 + a, x11 = x10 + a;
        for (long i = 0; i < iterations; i++)
        {
            x0 = Vector256.FusedMultiplyAdd(x0, m, a); x1 = Vector256.FusedMultiplyAdd(x1, m, a);
            x2 = Vector256.FusedMultiplyAdd(x2, m, a); x3 = Vector256.FusedMultiplyAdd(x3, m, a);
            x4 = Vector256.FusedMultiplyAdd(x4, m, a); x5 = Vector256.FusedMultiplyAdd(x5, m, a);
            x6 = Vector256.FusedMultiplyAdd(x6, m, a); x7 = Vector256.FusedMultiplyAdd(x7, m, a);
            x8 = Vector256.FusedMultiplyAdd(x8, m, a); x9 = Vector256.FusedMultiplyAdd(x9, m, a);
            x10 = Vector256.FusedMultiplyAdd(x10, m, a);
            x11 = Vector256.FusedMultiplyAdd(x11, m, a);
        }
        return Vector256.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chain128(long iterations)
    {
        var m = Vector128.Create(0.999999f);
        var a = Vector128.Create(1e-7f);
        Vector128<float> x0 = Vector128.Create(1f), x1 = x0 + a, x2 = x1 + a, x3 = x2 + a;
        Vector128<float> x4 = x3 + a, x5 = x4 + a, x6 = x5 + a, x7 = x6 + a;
        Vector128<float> x8 = x7 + a, x9 = x8 + a, x10 = x9 + a, x11 = x10 + a;
        for (long i = 0; i < iterations; i++)
        {
            x0 = Vector128.FusedMultiplyAdd(x0, m, a); x1 = Vector128.FusedMultiplyAdd(x1, m, a);
            x2 = Vector128.FusedMultiplyAdd(x2, m, a); x3 = Vector128.FusedMultiplyAdd(x3, m, a);
            x4 = Vector128.FusedMultiplyAdd(x4, m, a); x5 = Vector128.FusedMultiplyAdd(x5, m, a);
            x6 = Vector128.FusedMultiplyAdd(x6, m, a); x7 = Vector128.FusedMultiplyAdd(x7, m, a);
            x8 = Vector128.FusedMultiplyAdd(x8, m, a); x9 = Vector128.FusedMultiplyAdd(x9, m, a);
            x10 = Vector128.FusedMultiplyAdd(x10, m, a);
            x11 = Vector128.FusedMultiplyAdd(x11, m, a);
        }
        return Vector128.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
    }
}
