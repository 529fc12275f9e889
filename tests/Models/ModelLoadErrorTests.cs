using System.Text.Json.Nodes;
using Managed.Kernels.Devices;
using Managed.Models;
using Xunit;

namespace Managed.Tests.Models;

/// <summary>Loading errors of <see cref="TransformerModel.Load"/> name the file and the
/// tensor (a fixture copied to a temporary folder, its config edited to disagree).</summary>
public sealed class ModelLoadErrorTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "managed-model-" +
        Guid.NewGuid().ToString("N"));

    public ModelLoadErrorTests()
    {
        var source = Path.Combine(HfFixture.Root, "llama-gqa");
        Directory.CreateDirectory(_dir);
        foreach (var file in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(source, file), Path.Combine(_dir, file));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void EditConfig(string key, int value)
    {
        string path = Path.Combine(_dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!;
        json[key] = value;
        File.WriteAllText(path, json.ToJsonString());
    }

    [Fact]
    public void A_missing_tensor_names_the_checkpoint_and_the_tensor()
    {
        int layers = (int)JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "config.json")))!
            ["num_hidden_layers"]!;
        EditConfig("num_hidden_layers", layers + 1);
        var e = Assert.Throws<ModelFormatException>(
            () => TransformerModel.Load(_dir, ComputeDevice.Host));
        Assert.EndsWith("model.safetensors", e.FilePath);
        Assert.StartsWith($"model.layers.{layers}.", e.TensorName);
        Assert.Contains(e.TensorName!, e.Message);
    }

    [Fact]
    public void A_shape_that_disagrees_with_the_config_names_the_file_and_the_tensor()
    {
        EditConfig("intermediate_size", 80);
        var e = Assert.Throws<ModelFormatException>(
            () => TransformerModel.Load(_dir, ComputeDevice.Host));
        Assert.EndsWith("model.safetensors", e.FilePath);
        Assert.Equal("model.layers.0.mlp.gate_proj.weight", e.TensorName);
    }

    [Fact]
    public void A_truncated_checkpoint_is_a_format_error_naming_the_file()
    {
        string path = Path.Combine(_dir, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        var e = Assert.Throws<ModelFormatException>(
            () => TransformerModel.Load(_dir, ComputeDevice.Host));
        Assert.EndsWith("model.safetensors", e.FilePath);
    }

    [Fact]
    public void Bad_arguments_are_rejected_before_any_work()
    {
        using var model = TransformerModel.Load(_dir, ComputeDevice.Host,
            new ModelOptions { MaxLength = 8 });
        var logits = new float[model.VocabSize];
        Assert.Throws<ArgumentException>(() => model.Append(0, [model.VocabSize], logits));
        Assert.Throws<ArgumentException>(() => model.Append(0, new int[9], logits));
        Assert.Throws<ArgumentException>(() => model.Append(0, [1, 2], new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Append(1, [1], logits));
        Assert.Throws<ArgumentException>(() => model.Step([1, 2], new float[2 * model.VocabSize]));
        Assert.Equal(0, model.Length(0));
    }
}
