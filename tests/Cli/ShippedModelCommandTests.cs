using System.Text.Json;
using Managed.Cli;
using Xunit;

namespace Managed.Tests.Cli;

/// <summary>
/// generate, forward and perplexity in-process on the shipped model (models/kjv-llama, on the
/// host, through the real <see cref="ModelFactory"/>): greedy ids and text equal the fp64
/// greedy continuation transformers produced at training time (training/sample.json), forward's
/// logits agree with that continuation position by position, and perplexity's variant row
/// equals exact attention where the variant's window covers the text.
/// </summary>
public sealed class ShippedModelCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("managed-kjv-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = CliApp.Run(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private static JsonElement Sample()
    {
        string path = Path.Combine(ShippedModel.Find(), "training", "sample.json");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    }

    private static int[] Ids(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetInt32())];

    private string WriteIds(IEnumerable<int> ids)
    {
        string path = Path.Combine(_dir, $"ids-{Guid.NewGuid():N}.txt");
        File.WriteAllText(path, string.Join(' ', ids));
        return path;
    }

    [Fact]
    public void GreedyIdsEqualTransformersFp64()
    {
        var sample = Sample();
        var prompt = Ids(sample.GetProperty("prompt_ids"));
        var expected = Ids(sample.GetProperty("greedy_ids_float64"));
        var (exit, stdout, stderr) = Run("generate", "--ids", WriteIds(prompt), "--max-new",
            $"{expected.Length}", "--greedy");
        Assert.True(exit == 0, stderr);
        Assert.Equal(string.Join(' ', expected) + Environment.NewLine, stdout);
    }

    [Fact]
    public void GreedyTextEqualsTransformersFp64()
    {
        var sample = Sample();
        string prompt = sample.GetProperty("prompt").GetString()!;
        var (exit, stdout, stderr) = Run("generate", "--prompt", prompt, "--greedy",
            "--max-new", "50");
        Assert.True(exit == 0, stderr);
        Assert.Equal(prompt + sample.GetProperty("greedy_text_float64").GetString()
            + Environment.NewLine, stdout);
    }

    [Fact]
    public void SampledTextIsReproducibleForASeed()
    {
        var first = Run("generate", "--max-new", "30", "--seed", "11");
        var again = Run("generate", "--max-new", "30", "--seed", "11");
        Assert.Equal(0, first.Exit);
        Assert.Equal(first.Out, again.Out);
        Assert.StartsWith("In the beginning", first.Out);
    }

    [Fact]
    public void ForwardLogitsPredictTheGreedyContinuation()
    {
        var sample = Sample();
        var prompt = Ids(sample.GetProperty("prompt_ids"));
        var greedy = Ids(sample.GetProperty("greedy_ids_float64"));
        int[] ids = [.. prompt, .. greedy];
        string outPath = Path.Combine(_dir, "logits.bin");
        var (exit, _, stderr) = Run("forward", "--ids", WriteIds(ids), "--out", outPath);
        Assert.True(exit == 0, stderr);
        var bytes = File.ReadAllBytes(outPath);
        const int vocab = 4096;
        Assert.Equal(ids.Length * vocab * sizeof(float), bytes.Length);
        // Position p's argmax is token p + 1 for every position from the prompt's last on.
        for (int p = prompt.Length - 1; p < ids.Length - 1; p++)
        {
            int best = 0;
            float bestValue = float.NegativeInfinity;
            for (int v = 0; v < vocab; v++)
            {
                float x = BitConverter.ToSingle(bytes, (p * vocab + v) * sizeof(float));
                if (x > bestValue) (best, bestValue) = (v, x);
            }
            Assert.True(ids[p + 1] == best, $"position {p}: argmax {best}, not {ids[p + 1]}");
        }
    }

    [Fact]
    public void PerplexityOfAWindowCoveringTheTextEqualsExact()
    {
        string path = Path.Combine(_dir, "genesis.txt");
        File.WriteAllText(path, "In the beginning God created the heaven and the earth.\n"
            + "And the earth was without form, and void; and darkness was upon the face of the "
            + "deep. And the Spirit of God moved upon the face of the waters.\n"
            + "And God said, Let there be light: and there was light.\n");
        var wide = Run("perplexity", "--text", path, "--attention", "sink4-window256");
        Assert.True(wide.Exit == 0, wide.Err);
        var lines = wide.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains("+0.00% vs exact", lines[2]);
        double exact = Value(lines[1]);
        Assert.InRange(exact, 2, 200);   // a KJV passage under a KJV model (validation ~43)
        var narrow = Run("perplexity", "--text", path, "--attention", "sink1-window4");
        Assert.True(narrow.Exit == 0, narrow.Err);
        var rows = narrow.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(exact, Value(rows[1]));
        Assert.NotEqual(exact, Value(rows[2]));
        Assert.Contains("100%", narrow.Err);
    }

    private static double Value(string row)
    {
        var words = row.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return double.Parse(words[Array.IndexOf(words, "perplexity") + 1],
            System.Globalization.CultureInfo.InvariantCulture);
    }
}
