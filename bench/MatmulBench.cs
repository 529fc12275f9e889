using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;

namespace Managed.Bench;

/// <summary>
/// <c>--matmul</c>: the host linear layer on a 1B-model-sized projection (default n 2048,
/// k 8192) for each weight type. GEMV rows (m &lt;= 4) report GB/s of weight bytes read
/// once per call beside the read bandwidth measured in the same run (<see
/// cref="DecodeTiming.ReadBandwidth"/>); GEMM rows report GFLOP/s. Options: --n, --k,
/// --m (list, default 1,4,64), --threads, --types (float,half,bf16), --cached (one copy:
/// the kernels' speed from cache).
/// </summary>
public static class MatmulBench
{
    public static int Run(string[] args)
    {
        int n = Int(args, "--n", 2048), k = Int(args, "--k", 8192);
        int threads = Int(args, "--threads", Environment.ProcessorCount);
        int[] ms = List(args, "--m", "1,4,64").Select(int.Parse).ToArray();
        string[] types = List(args, "--types", "bf16,half,float");
        Console.WriteLine($"probing read bandwidth on {threads} threads...");
        double bandwidth = DecodeTiming.ReadBandwidth(threads);
        Console.WriteLine($"read bandwidth {bandwidth:F1} GB/s (sums of 1 GiB)");
        Console.WriteLine("weights: copies of at least 512 MB in all, used in turn");
        Console.WriteLine($"| weights | m | n | k | ms | weight GB/s | share of read | GFLOP/s |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        var rng = new Random(1);
        var wide = new float[(long)n * k];
        for (long i = 0; i < wide.Length; i++) wide[i] = rng.NextSingle() * 2 - 1;
        foreach (string type in types)
        {
            // Copies of the weights in their stored type, used in turn, together larger
            // than any last-level cache (as a model's layers are): each call reads its
            // weights from memory.
            var options = new LinearOptions { MaxDegreeOfParallelism = threads };
            int bytes = type == "float" ? 4 : 2;
            int copies = args.Contains("--cached") ? 1
                : (int)Math.Max(1, (512L << 20) / ((long)n * k * bytes));
            Action<int, float[], float[]> call = type switch
            {
                "float" => Rotating(Copies(wide, copies, w => w), n, k, options),
                "half" => Rotating(Copies(wide, copies, w =>
                {
                    var h = new Half[w.Length];
                    ElementConvert.FromSingle(w, h);
                    return h;
                }), n, k, options),
                _ => Rotating(Copies(wide, copies, w =>
                {
                    var b = new BFloat16[w.Length];
                    ElementConvert.FromSingle(w, b);
                    return b;
                }), n, k, options),
            };
            foreach (int m in ms)
            {
                var x = new float[m * k];
                for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle() * 2 - 1;
                var y = new float[m * n];
                double s = DecodeTiming.Interleaved([() => call(m, x, y)], minRuns: 5,
                    seconds: 1.0)[0];
                double gbps = (double)n * k * bytes / s / 1e9;
                double gflops = 2.0 * m * n * k / s / 1e9;
                Console.WriteLine($"| {type} | {m} | {n} | {k} | {s * 1e3:F2} | {gbps:F1} "
                    + $"| {gbps / bandwidth:P0} | {gflops:F1} |");
            }
        }
        return 0;
    }

    private static T[][] Copies<T>(float[] wide, int copies, Func<float[], T[]> convert)
    {
        var first = convert(wide);
        return Enumerable.Range(0, copies).Select(i => i == 0 ? first : (T[])first.Clone())
            .ToArray();
    }

    private static Action<int, float[], float[]> Rotating<T>(T[][] weights, int n, int k,
        LinearOptions options) where T : unmanaged
    {
        int next = 0;
        return (m, x, y) => Linear.Forward<T>(ComputeDevice.Host, new LinearShape(m, n, k), x,
            weights[next++ % weights.Length], default, y, options);
    }

    private static int Int(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }

    private static string[] List(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return (i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback).Split(',');
    }
}
