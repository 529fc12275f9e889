using System.Globalization;
using Managed.Kernels.Registry;
using Managed.Models.Generation;

namespace Managed.Cli;

/// <summary>`managed perplexity`: the perplexity of a text file under the model's own
/// attention and, beside it, under --attention's variant.</summary>
internal static class PerplexityCommand
{
    public static int Run(CliOptions o, CliContext c)
    {
        string textPath = o.Text ?? throw new UsageException("perplexity needs --text FILE "
            + "(the text to score)");
        if (o is { Window: < 2 })
            throw new UsageException($"--window '{o.Window}' is too small (expected N >= 2)");
        if (o is { Window: int w, Stride: int s } && s > w)
            throw new UsageException($"--stride '{s}' is larger than --window {w} (tokens "
                + "between windows would go unscored)");
        string directory = o.Model ?? ShippedModel.Find();
        var tokenizer = ModelTokenizer.Open(directory);
        var tokens = tokenizer.Encode(File.ReadAllText(textPath));
        if (tokens.Length < 2)
            throw new InvalidDataException($"{textPath}: {tokens.Length} token(s); perplexity "
                + "needs at least 2");

        var rows = new List<(string Name, PerplexityResult Result)>();
        int window = 0, stride = 0;
        foreach (var attention in o.Attention is { } a ? [null, a] : new VariantSpec?[] { null })
        {
            string name = attention is { } spec ? spec.Name : "exact";
            using var model = c.OpenModel(new ModelRequest(directory, o.Device, attention));
            TokenIds.Check(tokens[..Math.Min(tokens.Length, model.MaxLength)], model, textPath);
            window = Math.Min(o.Window ?? model.MaxLength, model.MaxLength);
            stride = Math.Min(o.Stride ?? window, window);
            var bar = new ProgressBar(c.Error, name);
            var result = Perplexity.Evaluate(model, tokens,
                new PerplexityOptions { Window = window, Stride = stride }, bar.Report);
            bar.Finish();
            rows.Add((name, result));
        }

        c.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{textPath}: {tokens.Length} tokens ({tokenizer.Kind}), window {window}, "
            + $"stride {stride}, model {directory}"));
        int width = Math.Max(10, rows.Max(r => r.Name.Length));
        double exact = rows[0].Result.Value;
        foreach (var (name, r) in rows)
        {
            string change = ReferenceEquals(name, rows[0].Name) ? ""
                : string.Create(CultureInfo.InvariantCulture,
                    $"  {(r.Value / exact - 1) * 100:+0.00;-0.00}% vs exact");
            c.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {name.PadRight(width)}  perplexity {r.Value,10:F3}  (mean NLL "
                + $"{r.MeanNll:F4} nats over {r.Tokens} tokens){change}"));
        }
        return 0;
    }

    /// <summary>"label [#####.....]  45%  1843/4095 tokens" on one line of the writer,
    /// rewritten (carriage return) when the percentage changes.</summary>
    private sealed class ProgressBar(TextWriter output, string label)
    {
        private const int Width = 30;
        private int _shown = -1;

        public void Report(int done, int total)
        {
            int percent = total == 0 ? 100 : (int)(100L * done / total);
            if (percent == _shown) return;
            _shown = percent;
            int filled = percent * Width / 100;
            output.Write(string.Create(CultureInfo.InvariantCulture,
                $"\r{label} [{new string('#', filled)}{new string('.', Width - filled)}] "
                + $"{percent,3}%  {done}/{total} tokens"));
            output.Flush();
        }

        public void Finish() => output.WriteLine();
    }
}
