using System.Diagnostics;
using System.Text.Json;
using Managed.Kernels.Devices;
using Managed.Kernels.Matmul;
using Managed.Kernels.Registry;
using Managed.Models;
using Managed.Tensors;
using Managed.Tests.Docs;
using Xunit;
using Xunit.Abstractions;

namespace Managed.Tests.Models;

/// <summary>models/kjv-llama (bf16, 7.1 M parameters): it loads, and its greedy continuation
/// of "In the beginning" is HF's in float64 from the same bf16 weights (training/sample.json;
/// the smallest top-1/top-2 gap there is 0.035, far above our error).</summary>
public sealed class ShippedModelTests(ITestOutputHelper output)
{
    private static string Directory => Path.Combine(ReadmeSnippetTests.RepoRoot(), "models",
        "kjv-llama");

    private static (int[] Prompt, int[] Greedy) Sample()
    {
        using var json = JsonDocument.Parse(
            File.ReadAllText(Path.Combine(Directory, "training", "sample.json")));
        int[] Ints(string name) => json.RootElement.GetProperty(name).EnumerateArray()
            .Select(e => e.GetInt32()).ToArray();
        return (Ints("prompt_ids"), Ints("greedy_ids_float64"));
    }

    [Fact]
    public void Loads_with_the_config_and_bf16_weights()
    {
        using var model = TransformerModel.Load(Directory, ComputeDevice.Host);
        Assert.Equal(ModelFamily.Llama, model.Config.Family);
        Assert.Equal(4096, model.VocabSize);
        Assert.Equal(8, model.Config.LayerCount);
        // 7.1 M parameters in bf16; the tied embedding is read once as the LM head.
        Assert.InRange(model.WeightBytes, 12_000_000, 15_000_000);
    }

    [Fact]
    public void Greedy_continuation_of_in_the_beginning_matches_hugging_face()
    {
        var (prompt, expected) = Sample();
        using var model = TransformerModel.Load(Directory, ComputeDevice.Host,
            new ModelOptions { MaxLength = 128 });
        var logits = new float[model.VocabSize];
        var ids = new List<int>();
        var clock = new Stopwatch();
        model.Append(0, prompt, logits);
        for (int i = 0; i < expected.Length; i++)
        {
            ids.Add(HfFixture.ArgMax(logits));
            if (i + 1 < expected.Length)
            {
                if (i == 1) clock.Start();    // after the first step: warm code paths
                model.Step([ids[^1]], logits);
            }
        }
        clock.Stop();
        double ms = clock.Elapsed.TotalMilliseconds / (expected.Length - 2);
        output.WriteLine($"host decode: {ms:F2} ms/token");
        Assert.Equal(expected, ids);
    }

    [Fact]
    public void A_bf16_cache_and_a_sink_window_variant_still_generate_the_same_start()
    {
        // A window of 256 keys over a 54-token run is exact attention; a bf16 cache rounds
        // the keys and values (the greedy gap of 0.035 keeps the first tokens).
        var (prompt, expected) = Sample();
        using var model = TransformerModel.Load(Directory, ComputeDevice.Host, new ModelOptions
        {
            MaxLength = 64,
            CacheType = DataType.BFloat16,
            Attention = new VariantSpec(MaskSpec.SinkWindow(4, 256)),
        });
        var logits = new float[model.VocabSize];
        model.Append(0, prompt, logits);
        var ids = new List<int>();
        for (int i = 0; i < 16; i++)
        {
            ids.Add(HfFixture.ArgMax(logits));
            model.Step([ids[^1]], logits);
        }
        Assert.Equal(expected.Take(16), ids);
    }

    /// <summary>LinearPrecision.WeightType applies to CUDA prefill only: on the host the
    /// prompt's logits are the default's bit for bit; an undefined value is refused before
    /// the checkpoint is read.</summary>
    [Fact]
    public void Weight_type_linear_precision_leaves_the_host_exact()
    {
        var (prompt, _) = Sample();
        float[] Logits(LinearPrecision precision)
        {
            using var model = TransformerModel.Load(Directory, ComputeDevice.Host,
                new ModelOptions { MaxLength = 64, LinearPrecision = precision });
            var logits = new float[model.VocabSize];
            model.Append(0, prompt, logits);
            return logits;
        }
        Assert.Equal(Logits(LinearPrecision.Exact), Logits(LinearPrecision.WeightType));
        var e = Assert.Throws<ArgumentException>(() => TransformerModel.Load(Directory,
            ComputeDevice.Host, new ModelOptions { LinearPrecision = (LinearPrecision)5 }));
        Assert.Contains("LinearPrecision", e.Message);
    }
}
