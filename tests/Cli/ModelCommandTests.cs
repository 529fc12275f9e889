using System.Globalization;
using Managed.Cli;
using Managed.Kernels.Devices;
using Managed.Kernels.Registry;
using Managed.Models.Generation;
using Managed.Tests.Generation;
using Xunit;

namespace Managed.Tests.Cli;

/// <summary>
/// generate, forward and perplexity in-process, on <see cref="FakeModel"/> (vocabulary 4096,
/// eos 0, as the shipped model) opened through the CLI's model seam, with the shipped model's
/// real tokenizer: the forward file format, the ids and text outputs of generate, the request
/// each command makes (folder, device, attention), and perplexity's two rows.
/// </summary>
public sealed class ModelCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("managed-model-cli-").FullName;
    private readonly List<ModelRequest> _requests = [];

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static FakeModel NewFake() => new(vocab: 4096, eos: 0, maxBatch: 1, maxLength: 64);

    private (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = CliApp.Run(args, stdout, stderr, request =>
        {
            _requests.Add(request);
            return NewFake();
        });
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static string ShippedDirectory => ShippedModel.Find();

    [Fact]
    public void ForwardWritesEveryPositionsLogitsAsLittleEndianFloat32()
    {
        int[] ids = [0, 17, 4095, 3, 3, 250];
        string idsPath = Write("ids.txt", "0 17\n4095\t3  3\r\n250\n");
        string outPath = Path.Combine(_dir, "logits.bin");
        var (exit, stdout, stderr) = Run("forward", "--model", ShippedDirectory, "--ids",
            idsPath, "--out", outPath, "--device", "cpu");
        Assert.Equal("", stderr);
        Assert.Equal(0, exit);
        Assert.Contains("[6, 4096]", stdout);
        var bytes = File.ReadAllBytes(outPath);
        Assert.Equal(ids.Length * 4096 * 4, bytes.Length);
        var fake = NewFake();
        var row = new float[4096];
        for (int p = 0; p < ids.Length; p++)
        {
            fake.Row(ids[p], p, row);
            for (int v = 0; v < 4096; v++)
                Assert.Equal(row[v], BitConverter.ToSingle(bytes, (p * 4096 + v) * 4));
        }
        Assert.Equal(new ModelRequest(ShippedDirectory, DeviceKind.Host, null), _requests[0]);
    }

    [Fact]
    public void ForwardRejectsIdsOutsideTheVocabulary()
    {
        string idsPath = Write("ids.txt", "1 2 4096");
        var (exit, _, stderr) = Run("forward", "--ids", idsPath, "--out",
            Path.Combine(_dir, "x.bin"));
        Assert.Equal(1, exit);
        Assert.Contains("4096", stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void ForwardRejectsAFileThatIsNotIds()
    {
        string idsPath = Write("ids.txt", "1 two 3");
        var (exit, _, stderr) = Run("forward", "--ids", idsPath, "--out",
            Path.Combine(_dir, "x.bin"));
        Assert.Equal(1, exit);
        Assert.StartsWith("managed: error: forward: ", stderr);
        Assert.Contains("'two'", stderr);
    }

    [Fact]
    public void GenerateGreedyIdsPrintsTheGeneratedIdsOnOneLine()
    {
        string idsPath = Write("prompt.txt", "0 1136 259 2084");
        var (exit, stdout, _) = Run("generate", "--model", ShippedDirectory, "--ids", idsPath,
            "--max-new", "12", "--greedy", "--device", "cpu");
        Assert.Equal(0, exit);
        var expected = new Generator(NewFake(), new GenerationOptions { MaxNewTokens = 12 })
            .Generate([0, 1136, 259, 2084]).Tokens;
        Assert.Equal(string.Join(' ', expected) + Environment.NewLine, stdout);
    }

    [Fact]
    public void GeneratePromptPrintsThePromptThenTheDecodedTokens()
    {
        var (exit, stdout, stderr) = Run("generate", "--prompt", "And God said", "--max-new",
            "20", "--temperature", "0.7", "--top-k", "30", "--top-p", "0.9",
            "--repetition-penalty", "1.2", "--seed", "7");
        Assert.Equal(0, exit);
        var tokenizer = ModelTokenizer.Open(ShippedDirectory);
        var sampling = new SamplingOptions(0.7f, 30, 0.9f, 1.2f, 7);
        var generated = new Generator(NewFake(), new GenerationOptions
        {
            MaxNewTokens = 20, Sampling = sampling,
        }).Generate(tokenizer.Encode("And God said")).Tokens;
        Assert.Equal("And God said" + tokenizer.Decode(generated) + Environment.NewLine, stdout);
        Assert.Contains("tokens in", stderr);
    }

    [Fact]
    public void GenerateWithNoOptionUsesTheShippedModelOnTheCpu()
    {
        var (exit, stdout, _) = Run("generate");
        Assert.Equal(0, exit);
        Assert.StartsWith(GenerateCommand.DefaultPrompt, stdout);
        var request = Assert.Single(_requests);
        Assert.Equal(Path.GetFullPath(ShippedDirectory), Path.GetFullPath(request.Directory));
        Assert.EndsWith(Path.Combine("models", "kjv-llama"), request.Directory);
        Assert.Equal(DeviceKind.Host, request.Device);
        Assert.Null(request.Attention);
    }

    [Fact]
    public void GenerateStopIdsEndTheText()
    {
        string idsPath = Write("prompt.txt", "0 1136");
        var free = new Generator(NewFake(), new GenerationOptions { MaxNewTokens = 10 })
            .Generate([0, 1136]).Tokens;
        var (exit, stdout, _) = Run("generate", "--ids", idsPath, "--greedy", "--max-new",
            "10", "--stop", $"{free[2]}");
        Assert.Equal(0, exit);
        int at = Array.IndexOf(free, free[2]);
        Assert.Equal(string.Join(' ', free.Take(at + 1)), stdout.Trim());
    }

    [Fact]
    public void AttentionSpecReachesTheModelRequest()
    {
        var (exit, _, _) = Run("generate", "--max-new", "2", "--attention", "sink4-window256",
            "--device", "ilgpu-cpu");
        Assert.Equal(0, exit);
        var request = Assert.Single(_requests);
        Assert.Equal(new VariantSpec(MaskSpec.SinkWindow(4, 256)), request.Attention);
        Assert.Equal(DeviceKind.IlgpuCpu, request.Device);
    }

    [Fact]
    public void PerplexityPrintsExactBesideTheVariantWithProgress()
    {
        string text = string.Concat(Enumerable.Repeat(
            "In the beginning God created the heaven and the earth. ", 12));
        string path = Write("text.txt", text);
        var (exit, stdout, stderr) = Run("perplexity", "--text", path, "--attention",
            "sink4-window256", "--stride", "16");
        Assert.Equal(0, exit);
        var tokens = ModelTokenizer.Open(ShippedDirectory).Encode(text);
        var expected = Perplexity.Evaluate(NewFake(), tokens,
            new PerplexityOptions { Window = 64, Stride = 16 });
        string value = expected.Value.ToString("F3", CultureInfo.InvariantCulture);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains("window 64, stride 16", lines[0]);
        Assert.Contains("exact", lines[1]);
        Assert.Contains(value, lines[1]);
        Assert.Contains("sink4-window256", lines[2]);
        Assert.Contains(value, lines[2]);          // the fake ignores the attention
        Assert.Contains("+0.00% vs exact", lines[2]);
        Assert.Contains("100%", stderr);
        Assert.Equal([null, new VariantSpec(MaskSpec.SinkWindow(4, 256))],
            _requests.Select(r => r.Attention));
    }

    public static TheoryData<string[], string[]> UsageErrors() => new()
    {
        { ["generate", "--ids", "a.txt", "--prompt", "x"], ["--ids", "--prompt"] },
        { ["generate", "--greedy", "--temperature", "0.5"], ["--greedy", "--temperature"] },
        { ["generate", "--greedy", "--seed", "3"], ["--greedy", "--seed"] },
        { ["generate", "--top-p", "0"], ["--top-p", "'0'"] },
        { ["generate", "--top-p", "1.5"], ["--top-p", "1.5"] },
        { ["generate", "--temperature", "-1"], ["--temperature", "-1"] },
        { ["generate", "--temperature", "NaN"], ["--temperature", "NaN"] },
        { ["generate", "--repetition-penalty", "0"], ["--repetition-penalty"] },
        { ["generate", "--max-new", "-3"], ["--max-new", "-3"] },
        { ["generate", "--top-k", "x"], ["--top-k", "x"] },
        { ["generate", "--seed", "-1"], ["--seed", "-1"] },
        { ["generate", "--stop", "1,b"], ["--stop", "b"] },
        { ["generate", "--attention", "bogus"], ["--attention", "bogus"] },
        { ["generate", "--device", "tpu"], ["--device", "tpu"] },
        { ["generate", "hello"], ["hello"] },
        { ["forward", "--out", "x.bin"], ["--ids"] },
        { ["forward", "--ids", "x.txt"], ["--out"] },
        { ["perplexity"], ["--text"] },
        { ["perplexity", "--text", "t.txt", "--window", "1"], ["--window", "1"] },
        { ["perplexity", "--text", "t.txt", "--stride", "0"], ["--stride", "0"] },
        { ["perplexity", "--text", "t.txt", "--window", "8", "--stride", "9"], ["--stride"] },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public void UsageErrorIsOneLineThenUsageWithExit2(string[] args, string[] named)
    {
        var (exit, stdout, stderr) = Run(args);
        CliAssert.UsageError(exit, stdout, stderr, named);
        Assert.Empty(_requests);
    }

    [Theory]
    [InlineData("generate", new[] { "--model", "--prompt", "--ids", "--max-new", "--greedy",
        "--temperature", "--top-k", "--top-p", "--repetition-penalty", "--seed", "--stop",
        "--attention", "--device" })]
    [InlineData("forward", new[] { "--model", "--ids", "--out", "--attention", "--device" })]
    [InlineData("perplexity", new[] { "--model", "--text", "--attention", "--window",
        "--stride", "--device" })]
    public void HelpListsEveryOption(string command, string[] options)
    {
        var (exit, stdout, stderr) = Run(command, "--help");
        Assert.Equal(0, exit);
        Assert.Equal("", stderr);
        Assert.StartsWith($"usage: managed {command}", stdout);
        foreach (string option in options) Assert.Contains(option, stdout);
        var (topExit, top, _) = Run("--help");
        Assert.Equal(0, topExit);
        Assert.Contains(command, top);
    }
}
