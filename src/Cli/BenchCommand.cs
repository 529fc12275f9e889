using System.Diagnostics;
using Managed.Kernels;
using Managed.Kernels.Backends;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>Times exact attention (dense and causal) and prints TFLOP/s: 4 B Hq Nq Nk D, halved
/// for causal. Warm-up run first, then the mean of timed runs.</summary>
internal static class BenchCommand
{
    public static int Run(CliOptions options)
    {
        using var backend = Devices.Open(options.Device);
        Console.WriteLine($"device: {backend.Name}");
        Console.WriteLine($"{"shape",-50} {"causal",6} {"ms",10} {"TFLOP/s",9}");
        foreach (int d in options.Dim)
        foreach (int n in options.Seq)
        foreach (bool causal in new[] { false, true })
        {
            var shape = AttentionShape.Self(options.Batch, options.Heads, n, d);
            var rng = new Random(1);
            float[] q = Fill(rng, shape.QueryLength), k = Fill(rng, shape.KeyLength), v = Fill(rng, shape.ValueLength);
            var o = new float[shape.OutputLength];
            void Once()
            {
                if (causal) backend.Attention(shape, q, k, v, o, default, default(NoScore), default(CausalMask));
                else backend.Attention(shape, q, k, v, o, default, default(NoScore), default(NoMask));
            }
            Once();
            var sw = Stopwatch.StartNew();
            int runs = 0;
            do { Once(); runs++; } while (sw.Elapsed.TotalSeconds < 1.0 && runs < 50);
            double ms = sw.Elapsed.TotalMilliseconds / runs;
            double flops = 4.0 * shape.Batch * shape.Heads * n * (double)n * d * (causal ? 0.5 : 1.0);
            Console.WriteLine($"{shape,-50} {causal,6} {ms,10:F3} {flops / ms / 1e9,9:F3}");
        }
        return 0;
    }

    private static float[] Fill(Random rng, long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }
}
