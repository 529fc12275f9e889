using System.Runtime.InteropServices;
using System.Text;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using ScottPlot;
using static Managed.Bench.Harness;

namespace Managed.Bench;

/// <summary>Writes RESULTS.md (CPU section) and the GFLOP/s-vs-N plot from one full run.</summary>
public sealed class Report(List<Measurement> results,
    Dictionary<string, Dictionary<string, double>> diffs, Peak peak, Peak peakEnd, int threads,
    AttentionTuning tuning, string loadStart, string loadEnd, string command)
{
    /// <summary>RESULTS.md keeps everything below this line (the hand-written analysis).</summary>
    public const string KeepMarker =
        "<!-- Everything below is hand-written and kept on regeneration. -->";

    private double Gflops(AttentionCase c, string impl) =>
        results.Single(r => r.Case == c && r.Impl == impl).Gflops;

    /// <summary>The ORT operator with the higher geometric-mean GFLOP/s over all shapes.</summary>
    public string ChosenOrt(out double mhaGeo, out double attGeo)
    {
        var cases = results.Select(r => r.Case).Distinct().ToList();
        mhaGeo = GeoMean(cases.Select(c => Gflops(c, Implementation.OrtMha)));
        attGeo = GeoMean(cases.Select(c => Gflops(c, Implementation.OrtAttention)));
        return mhaGeo >= attGeo ? Implementation.OrtMha : Implementation.OrtAttention;
    }

    /// <summary>The target ratio ours / ORT of the brief, or null where none is set.</summary>
    public static double? Target(AttentionCase c) =>
        c.Causal || (c.HeadDim == 64 && c.SeqLen >= 1024) ? 1.0
        : c.HeadDim == 128 ? 0.8 : null;

    public void Write(string markdownPath, string plotPath)
    {
        var cases = results.Select(r => r.Case).Distinct().ToList();
        string ort = ChosenOrt(out double mhaGeo, out double attGeo);
        double top = Math.Max(peak.AllCoresGflops, peakEnd.AllCoresGflops);
        var sb = new StringBuilder();
        sb.AppendLine("# Benchmark results").AppendLine();
        sb.AppendLine("## CPU: exact attention, fp32").AppendLine();
        sb.AppendLine($"- Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        sb.AppendLine($"- CPU: {CpuModel()}, {Environment.ProcessorCount} logical cores "
            + "(Vector512 accelerated: "
            + $"{System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated})");
        sb.AppendLine($"- OS / runtime: {RuntimeInformation.OSDescription}, "
            + $"{RuntimeInformation.FrameworkDescription}, ONNX Runtime "
            + $"{typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly.GetName().Version}");
        sb.AppendLine($"- Command: `{command.Trim()}` (in-process harness, see README.md)");
        sb.AppendLine($"- Threads: {threads} for every implementation "
            + $"(ORT IntraOpNumThreads={threads}, InterOpNumThreads=1; ours "
            + $"MaxDegreeOfParallelism={threads}); tuning QueryTile={tuning.QueryTile}, "
            + $"KeyTile={tuning.KeyTile}");
        sb.AppendLine($"- Load average (1/5/15 min) at start {loadStart}, at end {loadEnd} "
            + "(the machine is shared; see README.md)");
        sb.AppendLine("- Shapes: B=1, H=8, Q/K/V (B,H,N,D) uniform in [-1,1), scale 1/sqrt(D). "
            + "FLOP = 4·B·H·N²·D, halved for causal. Time = median of ≥7 runs after ≥1 s of "
            + "warm-up, each implementation timed in 3 blocks interleaved with the others' "
            + "(50 ms pause between blocks so ORT's spinning workers have stopped).");
        sb.AppendLine("- Before timing, every output is compared with ours: max |diff| < 1e-4 or "
            + $"the run fails. Largest differences seen: {DiffSummary()}.");
        sb.AppendLine();
        sb.AppendLine("### Machine peak (FMA probe)").AppendLine();
        sb.AppendLine($"12 independent Vector{peak.VectorBits} FMA chains per thread: "
            + $"**{F(peak.PerCoreGflops, "F1")} GFLOP/s on 1 thread, "
            + $"{F(peak.AllCoresGflops, "F1")} GFLOP/s on {peak.Threads} threads** at start; "
            + $"{F(peakEnd.PerCoreGflops, "F1")} / "
            + $"{F(peakEnd.AllCoresGflops, "F1")} at the end. \"% peak\" below divides by the "
            + $"larger all-thread value, {F(top, "F1")} GFLOP/s.");
        sb.AppendLine();
        sb.AppendLine("### ONNX Runtime operator").AppendLine();
        sb.AppendLine($"Both operators were run on every shape. Geometric mean over the 12 shapes: "
            + $"MultiHeadAttention (com.microsoft) {F(mhaGeo, "F1")} GFLOP/s, Attention (opset 23) "
            + $"{F(attGeo, "F1")} GFLOP/s. **The ratio column uses {ort}**, the faster of the two "
            + "overall; both columns are shown.");
        sb.AppendLine();
        sb.AppendLine("### Results (GFLOP/s)").AppendLine();
        sb.AppendLine("| Shape | Ours | Naive | ORT MHA | ORT Attention-23 | "
            + $"Ours / {ShortName(ort)} | Target | Ours % peak | ORT % peak | Naive % peak |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|");
        foreach (var c in cases)
        {
            double ours = Gflops(c, Implementation.Managed);
            double naive = Gflops(c, Implementation.Naive);
            double mha = Gflops(c, Implementation.OrtMha);
            double att = Gflops(c, Implementation.OrtAttention);
            double o = Gflops(c, ort), ratio = ours / o;
            string target = Target(c) is { } t
                ? $"≥ {F(t, "F1")} {(ratio >= t ? "met" : "**missed**")}" : "—";
            sb.AppendLine($"| {c.Name} | {F(ours, "F1")} | {F(naive, "F1")} | {F(mha, "F1")} | "
                + $"{F(att, "F1")} | {F(ratio, "F2")} | {target} | {F(100 * ours / top, "F0")}% | "
                + $"{F(100 * o / top, "F0")}% | {F(100 * naive / top, "F1")}% |");
        }
        sb.AppendLine();
        sb.AppendLine("![GFLOP/s against N](cpu-attention.png)").AppendLine();
        sb.AppendLine(KeepMarker);
        if (File.Exists(markdownPath))
        {
            string old = File.ReadAllText(markdownPath);
            int at = old.IndexOf(KeepMarker, StringComparison.Ordinal);
            if (at >= 0)
                sb.Append("\n").Append(old[(at + KeepMarker.Length)..].TrimStart('\r', '\n'));
        }
        File.WriteAllText(markdownPath, sb.ToString());
        Plot(cases, ort, top, plotPath);
        Console.WriteLine($"wrote {markdownPath} and {plotPath}");
    }

    private string DiffSummary() => string.Join(", ", diffs.Values.SelectMany(d => d)
        .GroupBy(kv => kv.Key).Select(g => $"{g.Key} {F(g.Max(kv => kv.Value), "E1")}"));

    private static string ShortName(string ort) =>
        ort == Implementation.OrtMha ? "ORT MHA" : "ORT Attention-23";

    private void Plot(List<AttentionCase> cases, string ort, double top, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(4);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(2, 2);
        int panel = 0;
        foreach (bool causal in new[] { false, true })
            foreach (int d in new[] { 64, 128 })
            {
                var plot = multiplot.GetPlot(panel++);
                var group = cases.Where(c => c.Causal == causal && c.HeadDim == d)
                    .OrderBy(c => c.SeqLen).ToList();
                double[] xs = group.Select(c => Math.Log2(c.SeqLen)).ToArray();
                foreach (var (impl, label) in new[]
                {
                    (Implementation.Managed, "Managed (ours)"),
                    (Implementation.OrtMha, "ORT MultiHeadAttention"),
                    (Implementation.OrtAttention, "ORT Attention (opset 23)"),
                    (Implementation.Naive, "Naive (TensorPrimitives)"),
                })
                {
                    var s = plot.Add.Scatter(xs, group.Select(c => Gflops(c, impl)).ToArray());
                    s.LegendText = label + (impl == ort ? " *" : "");
                    s.LineWidth = impl == Implementation.Managed ? 3 : 2;
                    s.MarkerSize = 8;
                }
                var peakLine = plot.Add.HorizontalLine(top);
                peakLine.LinePattern = LinePattern.Dashed;
                peakLine.LegendText = $"FMA peak, {threads} threads";
                plot.Axes.Bottom.SetTicks(xs, group.Select(c => c.SeqLen.ToString()).ToArray());
                plot.Axes.Bottom.Label.Text = "N (sequence length)";
                plot.Axes.Left.Label.Text = "GFLOP/s";
                plot.Axes.SetLimitsY(0, top * 1.08);
                plot.Title($"D={d}, {(causal ? "causal" : "non-causal")}, B=1 H=8 fp32");
                plot.ShowLegend(Alignment.UpperLeft);
            }
        multiplot.SavePng(path, 1400, 1000);
    }

    private static double GeoMean(IEnumerable<double> xs) => Math.Exp(xs.Average(Math.Log));
}
