using System.Globalization;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>
/// `bench --linear`: causal linear attention (<see cref="ChunkedLinearAttention"/>, features
/// elu(x) + 1 of random rows, F = D, normalized, no decay) for every --seq, its time per token,
/// and our exact causal kernel (FlashAttention) on the same shape beside it; the first length
/// where linear is faster is the crossover. Exact calls projected to take longer than
/// <see cref="ExactLimitSeconds"/> (quadratic from the last one timed) are skipped. Times are
/// medians (<see cref="BenchCommand.Time"/>); on an ILGPU device the tensors stay there.
/// </summary>
internal static class LinearBench
{
    private const double ExactLimitSeconds = 20;

    public static int Run(CliOptions options, TextWriter output)
    {
        if (options.Replot is { } csvPath) return Replot(csvPath, options.Plot!, output);
        using var device = ComputeDevice.Open(options.Device);
        output.WriteLine($"device: {device.Name}");
        output.WriteLine($"{"B",2} {"H",3} {"D",4} {"N",7} {"chunk",5} {"linear ms",10} "
            + $"{"us/token",9} {"exact ms",10} {"exact/linear",12}");
        using var csv = options.Output is null ? null : new StreamWriter(options.Output);
        csv?.WriteLine("batch,heads,dim,seq,chunk,linear_ms,us_per_token,exact_ms,exact_over_linear,"
            + "device");
        var plot = options.Plot is null ? null : new TimePerTokenPlot(device.Name);
        foreach (int d in options.Dim)
        {
            var linearPoints = new List<(int, double)>();
            var exactPoints = new List<(int, double)>();
            double? lastExact = null;
            int lastN = 0, crossover = 0;
            foreach (int n in options.Seq)
            {
                var shape = new LinearAttentionShape(options.Batch, options.Heads, options.Heads, n,
                    d, d);
                var rng = new Random(1);
                float[] q = EluPlusOne(BenchCommand.Fill(rng, shape.QueryLength));
                float[] k = EluPlusOne(BenchCommand.Fill(rng, shape.KeyLength));
                float[] v = BenchCommand.Fill(rng, shape.ValueLength);
                int chunk = options.Chunk ?? (device.IsHost ? ChunkedLinearAttention.HostChunk
                    : ChunkedLinearAttention.DeviceMaxChunk);
                var linearOptions = new LinearAttentionOptions
                {
                    Causal = true, Normalize = true, ChunkSize = chunk,
                };
                double linear = TimeLinear(device, shape, q, k, v, linearOptions);
                double? projected = lastExact * ((double)n / lastN) * ((double)n / lastN);
                double? exact = projected > ExactLimitSeconds * 1000 ? null
                    : TimeExact(device, AttentionShape.Self(options.Batch, options.Heads, n, d),
                        q, k, v);
                if (exact is { } e)
                {
                    (lastExact, lastN) = (e, n);
                    if (crossover == 0 && linear < e) crossover = n;
                }
                double perToken = linear * 1000 / ((double)options.Batch * n);
                linearPoints.Add((n, perToken));
                if (exact is { } ex) exactPoints.Add((n, ex * 1000 / ((double)options.Batch * n)));
                string exactText = exact is { } x ? $"{x,10:F3}" : $"{"skipped",10}";
                string ratio = exact is { } y ? $"{y / linear,12:F2}" : $"{"",12}";
                output.WriteLine($"{options.Batch,2} {options.Heads,3} {d,4} {n,7} {chunk,5} "
                    + $"{linear,10:F3} {perToken,9:F3} {exactText} {ratio}");
                csv?.WriteLine($"{options.Batch},{options.Heads},{d},{n},{chunk},{linear:F4},"
                    + $"{perToken:F4},{exact?.ToString("F4") ?? ""},"
                    + $"{(exact is { } z ? (z / linear).ToString("F3") : "")},"
                    + device.Name.Replace(',', ' '));
            }
            output.WriteLine(crossover > 0
                ? $"D={d}: linear overtakes exact causal from N = {crossover} (of the lengths run)"
                : $"D={d}: exact causal was faster at every length timed");
            plot?.Add($"linear D={d}", linearPoints, dashed: false);
            plot?.Add($"exact causal D={d}", exactPoints, dashed: true);
        }
        if (plot is not null && options.Plot is { } path)
        {
            plot.Save(path);
            output.WriteLine($"plot: {path}");
        }
        return 0;
    }

    /// <summary>The plot of a CSV written by --out (the device column optional: the file
    /// name stands for it in CSVs of earlier builds).</summary>
    private static int Replot(string csvPath, string pngPath, TextWriter output)
    {
        if (!File.Exists(csvPath))
            throw new UsageException($"--replot '{csvPath}': no such file");
        var lines = File.ReadAllLines(csvPath);
        if (lines.Length < 2 || !lines[0].StartsWith("batch,heads,dim,seq,", StringComparison.Ordinal))
            throw new UsageException($"--replot '{csvPath}': not a CSV of bench --linear --out "
                + "(expected the header batch,heads,dim,seq,chunk,linear_ms,...)");
        string device = Path.GetFileName(csvPath);
        var rows = new List<(int Dim, int N, double Linear, double? Exact)>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            var f = lines[i].Split(',');
            if (f.Length < 9 || !int.TryParse(f[0], CultureInfo.InvariantCulture, out int batch)
                || !int.TryParse(f[2], CultureInfo.InvariantCulture, out int dim)
                || !int.TryParse(f[3], CultureInfo.InvariantCulture, out int n)
                || !double.TryParse(f[6], CultureInfo.InvariantCulture, out double perToken))
                throw new UsageException($"--replot '{csvPath}': line {i + 1} is not a row of "
                    + "bench --linear --out");
            double? exact = double.TryParse(f[7], CultureInfo.InvariantCulture, out double e)
                ? e * 1000 / ((double)batch * n) : null;
            if (f.Length > 9 && f[9].Length > 0) device = f[9];
            rows.Add((dim, n, perToken, exact));
        }
        var plot = new TimePerTokenPlot(device);
        foreach (var byDim in rows.GroupBy(r => r.Dim))
        {
            plot.Add($"linear D={byDim.Key}", byDim.Select(r => (r.N, r.Linear)).ToList(),
                dashed: false);
            plot.Add($"exact causal D={byDim.Key}", byDim.Where(r => r.Exact is not null)
                .Select(r => (r.N, r.Exact!.Value)).ToList(), dashed: true);
        }
        plot.Save(pngPath);
        output.WriteLine($"plot: {pngPath}");
        return 0;
    }

    private static float[] EluPlusOne(float[] x)
    {
        for (int i = 0; i < x.Length; i++) x[i] = x[i] > 0 ? x[i] + 1 : MathF.Exp(x[i]);
        return x;
    }

    private static double TimeLinear(ComputeDevice device, LinearAttentionShape shape, float[] q,
        float[] k, float[] v, LinearAttentionOptions options)
    {
        if (device.IsHost)
        {
            var o = new float[shape.OutputLength];
            return BenchCommand.Time(
                () => ChunkedLinearAttention.Forward(device, shape, q, k, v, default, o, options),
                () => { });
        }
        var acc = device.Accelerator!;
        using var dq = acc.Allocate1D(q);
        using var dk = acc.Allocate1D(k);
        using var dv = acc.Allocate1D(v);
        using var dout = acc.Allocate1D<float>(shape.OutputLength);
        double ms = BenchCommand.Time(() => ChunkedLinearAttention.Forward(device, shape,
            dq.View, dk.View, dv.View, default, dout.View, options), acc.Synchronize);
        // The device's output against the host's, on the timed shape (segments included).
        var got = dout.GetAsArray1D();
        var expected = new float[shape.OutputLength];
        ChunkedLinearAttention.Forward(ComputeDevice.Host, shape, q, k, v, default, expected,
            options with { ChunkSize = ChunkedLinearAttention.HostChunk });
        double worst = 0, mean = expected.Average(MathF.Abs);
        for (int i = 0; i < got.Length; i++) worst = Math.Max(worst, Math.Abs(got[i] - expected[i]));
        Console.Error.WriteLine($"  N={shape.Length} F={shape.Features}: max |device - host| = "
            + $"{worst:E2} (mean |out| {mean:E2})");
        return ms;
    }

    private static double TimeExact(ComputeDevice device, AttentionShape shape, float[] q,
        float[] k, float[] v)
    {
        if (device.IsHost)
        {
            var o = new float[shape.OutputLength];
            return BenchCommand.Time(() => FlashAttention.Forward(device, shape, q, k, v, o,
                default, default(NoScore), default(CausalMask), default(SoftmaxNormalizer)),
                () => { });
        }
        var acc = device.Accelerator!;
        using var dq = acc.Allocate1D(q);
        using var dk = acc.Allocate1D(k);
        using var dv = acc.Allocate1D(v);
        using var dout = acc.Allocate1D<float>(shape.OutputLength);
        return BenchCommand.Time(() => FlashAttention.Forward(device, shape, dq.View, dk.View,
            dv.View, dout.View, default, default(NoScore), default(CausalMask),
            default(SoftmaxNormalizer)), acc.Synchronize);
    }
}
