using System.Diagnostics;
using System.Globalization;
using System.Text;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;

namespace Managed.Bench;

/// <summary>One measured (case, implementation) pair.</summary>
public sealed record Measurement(AttentionCase Case, string Impl, double MedianSeconds,
    double MinSeconds, int Runs)
{
    public double Gflops => Case.Flops / MedianSeconds / 1e9;
}

/// <summary>
/// In-process harness behind --quick, --full and --tune: verify every output against ours first,
/// warm up, then time the implementations round-robin (so a burst of load from other processes
/// hits all of them alike) and keep the median of each.
/// </summary>
public static class Harness
{
    private static readonly int[] FullSeqLens = [256, 1024, 4096], HeadDims = [64, 128];

    /// <summary>CI smoke run: tiny shapes, outputs compared, one timed run each.</summary>
    public static int Quick(string[] args)
    {
        int threads = Threads(args);
        var peak = PeakProbe.Measure(threads, 0.05);
        Console.WriteLine($"peak probe (short): {peak}");
        var results = new List<Measurement>();
        foreach (int n in new[] { 64, 100 })
            foreach (int d in HeadDims)
                foreach (bool causal in new[] { false, true })
                {
                    var c = new AttentionCase(1, 8, n, d, causal);
                    var impls = Implementation.For(c, threads, Tuning(args));
                    try
                    {
                        var diffs = Implementation.Verify(c, impls);
                        Console.WriteLine($"{c.Name}: outputs agree, max |diff| "
                            + string.Join(", ", diffs.Select(kv => $"{kv.Key} {kv.Value:E1}")));
                        results.AddRange(Measure(c, impls, minRuns: 1, maxRuns: 1, seconds: 0,
                            warmupSeconds: 0));
                    }
                    finally { impls.ForEach(i => i.Dispose()); }
                }
        Console.WriteLine(ConsoleTable(results));
        Console.WriteLine("quick run OK");
        return 0;
    }

    /// <summary>Full measurement: 12 shapes x 4 implementations, RESULTS.md and the plot.</summary>
    public static int Full(string[] args)
    {
        int threads = Threads(args);
        var tuning = Tuning(args);
        string dir = OutputDirectory(args);
        string load0 = LoadAverage();
        Console.WriteLine($"load average at start: {load0}");
        var peak = PeakProbe.Measure(threads, 1.0);
        Console.WriteLine($"peak: {peak}");
        var results = new List<Measurement>();
        var diffsByCase = new Dictionary<string, Dictionary<string, double>>();
        foreach (bool causal in new[] { false, true })
            foreach (int d in HeadDims)
                foreach (int n in SeqLens(args))
                {
                    var c = new AttentionCase(1, 8, n, d, causal);
                    var impls = Implementation.For(c, threads, tuning);
                    try
                    {
                        diffsByCase[c.Name] = Implementation.Verify(c, impls);
                        var m = Measure(c, impls, minRuns: 7, maxRuns: 200, seconds: 1.5);
                        results.AddRange(m);
                        Console.WriteLine($"{c.Name,-20} " + string.Join("  ",
                            m.Select(r => $"{r.Impl}: {r.Gflops,6:F1}"))
                            + $"  load {LoadAverage()}");
                    }
                    finally { impls.ForEach(i => i.Dispose()); }
                }
        string load1 = LoadAverage();
        var peakEnd = PeakProbe.Measure(threads, 1.0);
        Console.WriteLine($"peak at end: {peakEnd}; load average at end: {load1}");
        var report = new Report(results, diffsByCase, peak, peakEnd, threads, tuning, load0, load1,
            "dotnet run -c Release --project bench -- --full " + string.Join(' ', args));
        report.Write(Path.Combine(dir, "RESULTS.md"), Path.Combine(dir, "cpu-attention.png"));
        Console.WriteLine(ConsoleTable(results));
        return 0;
    }

    /// <summary>Runs one implementation in a loop (for perf): --loop N D causal|full impl seconds.
    /// </summary>
    public static int Loop(string[] args)
    {
        var c = new AttentionCase(1, 8, int.Parse(args[0]), int.Parse(args[1]),
            args[2] == "causal");
        var impls = Implementation.For(c, Threads(args), Tuning(args));
        var impl = impls.First(i => i.Name.StartsWith(args[3], StringComparison.OrdinalIgnoreCase));
        var sw = Stopwatch.StartNew();
        int runs = 0;
        while (sw.Elapsed.TotalSeconds < double.Parse(args[4], CultureInfo.InvariantCulture))
        {
            impl.Run();
            runs++;
        }
        double gflops = c.Flops * runs / sw.Elapsed.TotalSeconds / 1e9;
        Console.WriteLine($"{impl.Name} {c.Name}: {gflops:F1} GFLOP/s");
        impls.ForEach(i => i.Dispose());
        return 0;
    }

    /// <summary>Sweep of AttentionTuning (QueryTile x KeyTile), written to TUNING.md.
    /// </summary>
    public static int Tune(string[] args)
    {
        int threads = Threads(args);
        int[] queryTiles = [16, 32, 64], keyTiles = [64, 128, 256];
        var cases = new List<AttentionCase>();
        foreach (bool causal in new[] { false, true })
            foreach (int d in HeadDims)
                foreach (int n in new[] { 1024, 4096 })
                    cases.Add(new AttentionCase(1, 8, n, d, causal));
        var table = new Dictionary<(int, int), List<double>>();
        foreach (int bq in queryTiles)
            foreach (int bk in keyTiles)
            {
                var tuning = new AttentionTuning
                {
                    QueryTile = bq, KeyTile = bk, MaxDegreeOfParallelism = threads,
                };
                var row = new List<double>();
                foreach (var c in cases)
                {
                    var o = new float[c.Q.Length]; // (batch, heads, seq, headDim)
                    var impl = new Implementation($"{bq}x{bk}", () => c.RunManaged(o, tuning),
                        () => o);
                    row.Add(Measure(c, [impl], minRuns: 3, maxRuns: 30, seconds: 0.3,
                        warmupSeconds: 0.3)[0].Gflops);
                }
                table[(bq, bk)] = row;
                Console.WriteLine($"QueryTile {bq,3} KeyTile {bk,3}: "
                    + string.Join(" ", row.Select(g => $"{g,6:F1}")) + $"  load {LoadAverage()}");
            }
        var sb = new StringBuilder();
        sb.AppendLine("# AttentionTuning sweep (CPU)").AppendLine();
        sb.AppendLine($"Generated {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {CpuModel()}, "
            + $"{threads} threads, B=1 H=8, GFLOP/s (median). Command: "
            + "`dotnet run -c Release --project bench -- --tune`. **Bold**: best of the column.");
        sb.AppendLine().Append("| QueryTile x KeyTile |");
        foreach (var c in cases) sb.Append($" {c.Name} |");
        sb.AppendLine().Append("|---|").AppendLine(string.Concat(cases.Select(_ => "---:|")));
        var best = Enumerable.Range(0, cases.Count).Select(i => table.Values.Max(r => r[i]))
            .ToArray();
        foreach (var ((bq, bk), row) in table)
        {
            sb.Append($"| {bq} x {bk}{(bq == 32 && bk == 64 ? " (default)" : "")} |");
            for (int i = 0; i < row.Count; i++)
                sb.Append(row[i] == best[i] ? $" **{row[i]:F1}** |" : $" {row[i]:F1} |");
            sb.AppendLine();
        }
        File.WriteAllText(Path.Combine(OutputDirectory(args), "TUNING.md"), sb.ToString());
        Console.WriteLine(sb);
        return 0;
    }

    /// <summary>
    /// Warm-up of each, then timed runs in 3 blocks per implementation: each implementation
    /// gets at least minRuns and about <paramref name="seconds"/> of samples (at most maxRuns).
    /// </summary>
    public static List<Measurement> Measure(AttentionCase c, List<Implementation> impls,
        int minRuns, int maxRuns, double seconds, double warmupSeconds = 1.0)
    {
        var samples = impls.Select(_ => new List<double>()).ToArray();
        var want = new int[impls.Count];
        for (int i = 0; i < impls.Count; i++)
        {
            // Warm-up for about warmupSeconds, so tiered compilation has promoted the kernels
            // (30 calls, then a background tier-1 compile) before timing; sizes the run count.
            double t = Time(impls[i].Run), spent = t;
            while (spent < warmupSeconds)
            {
                t = Time(impls[i].Run);
                spent += t;
            }
            want[i] = (int)Math.Clamp(Math.Ceiling(seconds / t), minRuns, maxRuns);
        }
        // Blocks of one implementation at a time, the sequence repeated: a burst of outside load
        // hits every implementation, and one runtime's spinning worker threads (ORT spins after
        // a run) have stopped before the next runtime's block starts.
        for (int block = 0; block < Blocks; block++)
            for (int i = 0; i < impls.Count; i++)
            {
                int runs = (want[i] + Blocks - 1) / Blocks;
                if (block * runs >= want[i]) continue;
                Thread.Sleep(SwitchPauseMs);
                if (warmupSeconds > 0) impls[i].Run(); // untimed: wakes this runtime's threads
                for (int r = 0; r < runs; r++) samples[i].Add(Time(impls[i].Run));
            }
        return impls.Select((impl, i) => new Measurement(c, impl.Name, Median(samples[i]),
            samples[i].Min(), samples[i].Count)).ToList();
    }

    private static readonly int SwitchPauseMs =
        int.TryParse(Environment.GetEnvironmentVariable("BENCH_PAUSE_MS"), out int ms) ? ms : 50;

    private const int Blocks = 3;

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

    private static string ConsoleTable(List<Measurement> results)
    {
        var sb = new StringBuilder();
        foreach (var g in results.GroupBy(r => r.Case.Name))
            sb.AppendLine($"{g.Key,-20} " + string.Join("  ",
                g.Select(r => $"{r.Impl}: {r.Gflops,7:F2} GFLOP/s")));
        return sb.ToString();
    }

    /// <summary>--seq-lens 256,1024 restricts the full run (for trying the harness out).</summary>
    private static int[] SeqLens(string[] args) =>
        Option(args, "--seq-lens")?.Split(',').Select(int.Parse).ToArray() ?? FullSeqLens;

    private static int Threads(string[] args) =>
        int.TryParse(Option(args, "--threads"), out int t) ? t : Environment.ProcessorCount;

    private static AttentionTuning Tuning(string[] args)
    {
        var t = AttentionTuning.Default;
        if (int.TryParse(Option(args, "--query-tile"), out int bq)) t = t with { QueryTile = bq };
        if (int.TryParse(Option(args, "--key-tile"), out int bk)) t = t with { KeyTile = bk };
        return t;
    }

    private static string OutputDirectory(string[] args) =>
        Option(args, "--out") ?? BenchDirectory();

    /// <summary>bench/ of the source tree (found from the working directory upwards).</summary>
    private static string BenchDirectory()
    {
        for (var d = new DirectoryInfo(Environment.CurrentDirectory); d != null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Managed.Bench.csproj"))) return d.FullName;
            if (File.Exists(Path.Combine(d.FullName, "bench", "Managed.Bench.csproj")))
                return Path.Combine(d.FullName, "bench");
        }
        return Environment.CurrentDirectory;
    }

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    internal static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "n/a"; }
    }

    internal static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo")
                .FirstOrDefault(l => l.StartsWith("model name"));
            return line?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException) { return "unknown CPU"; }
    }

    internal static string F(double x, string format) =>
        x.ToString(format, CultureInfo.InvariantCulture);
}
