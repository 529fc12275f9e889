using Managed.Models;
using Xunit;
using static Managed.Tests.Models.SafetensorsBytes;

namespace Managed.Tests.Models;

public sealed class CheckpointSchemaTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private const string Qwen2 = """
        {"model_type": "qwen2", "vocab_size": 11, "hidden_size": 8, "intermediate_size": 12,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "head_dim": 4, "tie_word_embeddings": true}
        """;

    private const string Gpt2 = """
        {"model_type": "gpt2", "vocab_size": 13, "n_embd": 8, "n_layer": 2, "n_head": 2,
         "n_positions": 16}
        """;

    /// <summary>A checkpoint holding the given tensors (zeros of the given dtype).</summary>
    private SafetensorsCheckpoint Write(string name,
        IEnumerable<(string Name, long[] Shape)> tensors, string dtype = "BF16",
        Func<string, long[], long[]>? reshape = null)
    {
        int size = dtype == "F32" ? 4 : dtype == "I8" ? 1 : 2;
        var entries = tensors.Select(t =>
        {
            var shape = reshape?.Invoke(t.Name, t.Shape) ?? t.Shape;
            long count = shape.Aggregate(1L, (a, b) => a * b);
            return (t.Name, dtype, shape, new byte[count * size]);
        }).ToArray();
        return SafetensorsCheckpoint.Open(_dir.Write(name, Build(entries)));
    }

    private static IEnumerable<(string, long[])> Specs(ModelConfig c, string? prefix = null) =>
        CheckpointSchema.Expected(c, prefix).Where(s => s.Required)
            .Select(s => (s.Name, s.Shape.ToArray()));

    [Fact]
    public void Qwen2NamesAndShapes()
    {
        var c = ModelConfig.Parse(Qwen2);
        var specs = CheckpointSchema.Expected(c).ToDictionary(s => s.Name);
        Assert.Equal([11L, 8L], specs["model.embed_tokens.weight"].Shape);
        Assert.Equal([16L, 8L], specs["model.layers.1.self_attn.q_proj.weight"].Shape);
        Assert.Equal([16L], specs["model.layers.1.self_attn.q_proj.bias"].Shape);
        Assert.Equal([8L, 8L], specs["model.layers.0.self_attn.k_proj.weight"].Shape);
        Assert.Equal([8L], specs["model.layers.0.self_attn.v_proj.bias"].Shape);
        Assert.Equal([8L, 16L], specs["model.layers.0.self_attn.o_proj.weight"].Shape);
        Assert.False(specs.ContainsKey("model.layers.0.self_attn.o_proj.bias"));
        Assert.Equal([12L, 8L], specs["model.layers.0.mlp.gate_proj.weight"].Shape);
        Assert.Equal([12L, 8L], specs["model.layers.0.mlp.up_proj.weight"].Shape);
        Assert.Equal([8L, 12L], specs["model.layers.0.mlp.down_proj.weight"].Shape);
        Assert.Equal([8L], specs["model.layers.0.input_layernorm.weight"].Shape);
        Assert.Equal([8L], specs["model.layers.0.post_attention_layernorm.weight"].Shape);
        Assert.Equal([8L], specs["model.norm.weight"].Shape);
        Assert.False(specs["lm_head.weight"].Required);        // tied
        Assert.Equal(3 + 2 * 12, specs.Count);     // embed, norm, lm_head; 12 per layer

        using var checkpoint = Write("q.safetensors", Specs(c));
        var match = CheckpointSchema.Validate(c, checkpoint);
        Assert.Equal("model.", match.Prefix);
        Assert.Empty(match.Unused);
    }

    [Fact]
    public void LlamaUntiedNeedsLmHead()
    {
        var c = ModelConfig.Parse("""
            {"model_type": "llama", "vocab_size": 5, "hidden_size": 4, "intermediate_size": 6,
             "num_hidden_layers": 1, "num_attention_heads": 2}
            """, "llama/config.json");
        var specs = Specs(c).ToList();
        Assert.Contains(specs, s => s.Item1 == "lm_head.weight");
        Assert.DoesNotContain(specs, s => s.Item1.EndsWith(".bias", StringComparison.Ordinal));
        using var checkpoint = Write("l.safetensors",
            specs.Where(s => s.Item1 != "lm_head.weight"));
        var e = Assert.Throws<ModelFormatException>(() => CheckpointSchema.Validate(c, checkpoint));
        Assert.Equal("lm_head.weight", e.TensorName);
        Assert.EndsWith("l.safetensors", e.FilePath);
        Assert.Contains("missing", e.Message);
        Assert.Contains("llama/config.json implies shape [5, 4]", e.Message);
    }

    [Fact]
    public void ShapeMismatchNamesFileTensorAndBothShapes()
    {
        var c = ModelConfig.Parse(Qwen2, "qwen/config.json");
        using var checkpoint = Write("bad.safetensors", Specs(c), reshape: (name, shape) =>
            name == "model.layers.1.self_attn.k_proj.weight" ? [16, 8] : shape);
        var e = Assert.Throws<ModelFormatException>(() => CheckpointSchema.Validate(c, checkpoint));
        Assert.Equal("model.layers.1.self_attn.k_proj.weight", e.TensorName);
        Assert.EndsWith("bad.safetensors", e.FilePath);
        Assert.Contains("has shape [16, 8] but qwen/config.json implies [8, 8]", e.Message);
    }

    [Fact]
    public void NonWeightDtypeIsRejected()
    {
        var c = ModelConfig.Parse(Qwen2);
        using var checkpoint = Write("i8.safetensors", Specs(c), dtype: "I8");
        var e = Assert.Throws<ModelFormatException>(() => CheckpointSchema.Validate(c, checkpoint));
        Assert.Contains("I8", e.Message);
    }

    [Theory]
    [InlineData("transformer.")]
    [InlineData("")]
    public void Gpt2WithOrWithoutPrefix(string prefix)
    {
        var c = ModelConfig.Parse(Gpt2);
        var specs = CheckpointSchema.Expected(c, prefix).ToDictionary(s => s.Name);
        Assert.Equal([13L, 8L], specs[$"{prefix}wte.weight"].Shape);
        Assert.Equal([16L, 8L], specs[$"{prefix}wpe.weight"].Shape);
        Assert.Equal([8L, 24L], specs[$"{prefix}h.1.attn.c_attn.weight"].Shape);   // [in, out]
        Assert.Equal([24L], specs[$"{prefix}h.1.attn.c_attn.bias"].Shape);
        Assert.Equal([8L, 8L], specs[$"{prefix}h.0.attn.c_proj.weight"].Shape);
        Assert.Equal([8L, 32L], specs[$"{prefix}h.0.mlp.c_fc.weight"].Shape);
        Assert.Equal([32L, 8L], specs[$"{prefix}h.0.mlp.c_proj.weight"].Shape);
        Assert.Equal([8L], specs[$"{prefix}h.0.ln_1.bias"].Shape);
        Assert.Equal([8L], specs[$"{prefix}h.0.ln_2.weight"].Shape);
        Assert.Equal([8L], specs[$"{prefix}ln_f.bias"].Shape);
        Assert.False(specs["lm_head.weight"].Required);

        // Old GPT-2 checkpoints also carry the causal-mask buffers: reported, not required.
        var tensors = Specs(c, prefix).Append(($"{prefix}h.0.attn.bias", [1, 1, 16, 16]));
        using var checkpoint = Write("g.safetensors", tensors, dtype: "F32");
        var match = CheckpointSchema.Validate(c, checkpoint);
        Assert.Equal(prefix, match.Prefix);
        Assert.Equal([$"{prefix}h.0.attn.bias"], match.Unused);
    }

    [Fact]
    public void Gpt2ConvWeightTransposedIsAnError()
    {
        var c = ModelConfig.Parse(Gpt2);
        using var checkpoint = Write("t.safetensors", Specs(c, "transformer."),
            reshape: (name, shape) => name.EndsWith("c_attn.weight", StringComparison.Ordinal)
                ? [shape[1], shape[0]] : shape);
        var e = Assert.Throws<ModelFormatException>(() => CheckpointSchema.Validate(c, checkpoint));
        Assert.Equal("transformer.h.0.attn.c_attn.weight", e.TensorName);
        Assert.Contains("[24, 8]", e.Message);
        Assert.Contains("[8, 24]", e.Message);
    }

    [Fact]
    public void ShardedCheckpointValidates()
    {
        var c = ModelConfig.Parse(Qwen2);
        var specs = Specs(c).ToList();
        var first = specs.Take(10).ToList();
        var second = specs.Skip(10).ToList();
        Write("a.safetensors", first).Dispose();
        Write("b.safetensors", second).Dispose();
        var map = string.Join(",", first.Select(s => $"\"{s.Item1}\": \"a.safetensors\"")
            .Concat(second.Select(s => $"\"{s.Item1}\": \"b.safetensors\"")));
        _dir.Write("model.safetensors.index.json", "{\"weight_map\": {" + map + "}}");
        using var checkpoint = SafetensorsCheckpoint.Open(_dir.Path);
        Assert.Equal(2, checkpoint.Files.Count);
        Assert.Empty(CheckpointSchema.Validate(c, checkpoint).Unused);
    }
}
