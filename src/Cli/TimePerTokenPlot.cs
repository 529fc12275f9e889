using ScottPlot;

namespace Managed.Cli;

/// <summary>
/// `bench --linear --plot FILE`: microseconds per token against the sequence length, both on
/// log scales (log2 N, log10 us), one line per series. Flat lines are linear cost; exact
/// causal attention's time per token grows with N, so its line rises and crosses them.
/// ScottPlot draws it (the front end's only plotting dependency).
/// </summary>
internal sealed class TimePerTokenPlot(string device)
{
    private readonly Plot plot = new();
    private double minY = double.PositiveInfinity, maxY = double.NegativeInfinity;
    private readonly SortedSet<int> lengths = [];

    /// <summary>One series of (N, microseconds per token); an empty series is left out.
    /// </summary>
    public void Add(string label, IReadOnlyList<(int N, double Micros)> points, bool dashed)
    {
        if (points.Count == 0) return;
        var xs = points.Select(p => Math.Log2(p.N)).ToArray();
        var ys = points.Select(p => Math.Log10(p.Micros)).ToArray();
        var line = plot.Add.Scatter(xs, ys);
        line.LegendText = label;
        line.MarkerSize = 6;
        if (dashed) line.LinePattern = LinePattern.Dashed;
        foreach (var p in points)
        {
            lengths.Add(p.N);
            minY = Math.Min(minY, p.Micros);
            maxY = Math.Max(maxY, p.Micros);
        }
    }

    /// <summary>Writes the PNG (900 x 560).</summary>
    public void Save(string path)
    {
        plot.Title($"Causal attention, time per token: {device}");
        plot.XLabel("sequence length N");
        plot.YLabel("microseconds per token (log)");
        plot.Axes.Bottom.SetTicks(lengths.Select(n => Math.Log2(n)).ToArray(),
            lengths.Select(n => n >= 1024 ? $"{n / 1024}k" : $"{n}").ToArray());
        // 1-2-5 ticks in every decade the data spans.
        var ticks = new List<double>();
        for (int e = (int)Math.Floor(Math.Log10(minY)); e <= (int)Math.Ceiling(Math.Log10(maxY)); e++)
            foreach (int m in new[] { 1, 2, 5 })
                if (m * Math.Pow(10, e) is var t && t >= minY / 1.5 && t <= maxY * 1.5)
                    ticks.Add(t);
        plot.Axes.Left.SetTicks(ticks.Select(Math.Log10).ToArray(),
            ticks.Select(t => t.ToString("G4")).ToArray());
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, 900, 560);
    }
}
