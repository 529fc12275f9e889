using System.Diagnostics;
using System.Numerics.Tensors;

namespace Managed.Bench;

/// <summary>Timing and the read-bandwidth probe of <see cref="DecodePeer"/>.</summary>
public static class DecodeTiming
{
    private const int Blocks = 4, MaxRuns = 80;

    // ORT's intra-op workers spin for a while after a run; on 2 cores a call of ours started
    // right after one measures several times slow (see README), hence a pause before a block.
    private const int SwitchPauseMs = 50;

    /// <summary>
    /// Median seconds of each action: a warm-up of about <paramref name="warmupSeconds"/> each
    /// (which also sizes the run count), then <see cref="Blocks"/> rounds in which each action
    /// in turn gets a pause, one untimed call and a block of timed calls; at least
    /// <paramref name="minRuns"/> and about <paramref name="seconds"/> of calls each.
    /// </summary>
    public static double[] Interleaved(Action[] runs, int minRuns, double seconds,
        double warmupSeconds = 0.5)
    {
        var want = new int[runs.Length];
        for (int i = 0; i < runs.Length; i++)
        {
            double t = Time(runs[i]), spent = t;
            for (int n = 1; n < 3 || spent < warmupSeconds; n++)
            {
                t = Time(runs[i]);
                spent += t;
            }
            want[i] = (int)Math.Clamp(Math.Ceiling(seconds / t), minRuns, MaxRuns);
        }
        var samples = runs.Select(_ => new List<double>()).ToArray();
        for (int block = 0; block < Blocks; block++)
            for (int i = 0; i < runs.Length; i++)
            {
                int perBlock = (want[i] + Blocks - 1) / Blocks;
                Thread.Sleep(SwitchPauseMs);
                runs[i](); // untimed: wakes this runtime's threads
                for (int r = 0; r < perBlock; r++) samples[i].Add(Time(runs[i]));
            }
        return samples.Select(Median).ToArray();
    }

    /// <summary>GB/s of summing a 1 GiB float array split over <paramref name="threads"/>
    /// threads (median of about 2 s of calls): the read ceiling decode is compared with.
    /// </summary>
    public static double ReadBandwidth(int threads)
    {
        var data = GC.AllocateUninitializedArray<float>(1 << 28);
        int part = data.Length / threads;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads };
        // First touch on the threads that read, so pages are spread as the sums will use them.
        Parallel.For(0, threads, parallel, t => data.AsSpan(t * part, part).Fill(1f));
        var sums = new float[threads];
        void Sum() => Parallel.For(0, threads, parallel,
            t => sums[t] = TensorPrimitives.Sum<float>(data.AsSpan(t * part, part)));
        double s = Interleaved([Sum], minRuns: 10, seconds: 2.0)[0];
        GC.KeepAlive(sums);
        return (double)part * threads * sizeof(float) / (s * 1e9);
    }

    private static double Time(Action run)
    {
        long start = Stopwatch.GetTimestamp();
        run();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }
}
