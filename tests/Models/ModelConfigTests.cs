using Managed.Models;
using Xunit;

namespace Managed.Tests.Models;

public sealed class ModelConfigTests
{
    // Modelled on TinyLlama-1.1B's config.json (transformers 4.x).
    private const string Llama4x = """
        {
          "architectures": ["LlamaForCausalLM"],
          "attention_bias": false,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "hidden_act": "silu",
          "hidden_size": 2048,
          "initializer_range": 0.02,
          "intermediate_size": 5632,
          "max_position_embeddings": 2048,
          "model_type": "llama",
          "num_attention_heads": 32,
          "num_hidden_layers": 22,
          "num_key_value_heads": 4,
          "rms_norm_eps": 1e-05,
          "rope_scaling": null,
          "rope_theta": 10000.0,
          "tie_word_embeddings": false,
          "torch_dtype": "bfloat16",
          "transformers_version": "4.35.0",
          "use_cache": true,
          "vocab_size": 32000
        }
        """;

    // Llama 3.2 1B style: llama3 RoPE, tied, eos list, explicit head_dim, 4.x form.
    private const string Llama32 = """
        {
          "model_type": "llama", "vocab_size": 128256, "hidden_size": 2048,
          "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
          "num_key_value_heads": 8, "head_dim": 64, "max_position_embeddings": 131072,
          "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
          "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                           "original_max_position_embeddings": 8192, "rope_type": "llama3"},
          "tie_word_embeddings": true, "bos_token_id": 128000,
          "eos_token_id": [128001, 128008, 128009], "mlp_bias": false, "attention_bias": false
        }
        """;

    // The same in transformers 5.x form: rope_parameters carries rope_theta.
    private const string Llama32v5 = """
        {
          "model_type": "llama", "vocab_size": 128256, "hidden_size": 2048,
          "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
          "num_key_value_heads": 8, "head_dim": 64, "max_position_embeddings": 131072,
          "rms_norm_eps": 1e-05,
          "rope_parameters": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3",
                              "rope_theta": 500000.0},
          "tie_word_embeddings": true, "bos_token_id": 128000,
          "eos_token_id": [128001, 128008, 128009]
        }
        """;

    [Fact]
    public void Llama4xForm()
    {
        var c = ModelConfig.Parse(Llama4x, "tinyllama/config.json");
        Assert.Equal(ModelFamily.Llama, c.Family);
        Assert.Equal("tinyllama/config.json", c.SourcePath);
        Assert.Equal((32000, 2048, 5632, 22, 32, 4, 64),
            (c.VocabSize, c.HiddenSize, c.IntermediateSize, c.LayerCount, c.HeadCount,
             c.KvHeadCount, c.HeadDim));
        Assert.Equal(2048, c.MaxPositionEmbeddings);
        Assert.Equal(1e-5, c.NormEpsilon);
        Assert.Equal(NormKind.RmsNorm, c.Norm);
        Assert.Equal(Activation.Silu, c.Activation);
        Assert.False(c.TieWordEmbeddings);
        Assert.False(c.QkvBias || c.OutputBias || c.MlpBias);
        Assert.Equal([1], c.BosTokenIds);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Equal(22, c.Layers.Count);
        Assert.All(c.Layers, l => Assert.False(l.IsSliding));
        var rope = c.Layers[0].Rope!;
        Assert.Equal(RopeType.Default, rope.Type);
        Assert.Equal(10000.0, rope.Theta);
        Assert.Equal(64, rope.Dim);
    }

    [Fact]
    public void LlamaDefaultsAndBias()
    {
        var c = ModelConfig.Parse("""
            {"model_type": "llama", "vocab_size": 10, "hidden_size": 12,
             "intermediate_size": 20, "num_hidden_layers": 2, "num_attention_heads": 3,
             "attention_bias": true, "mlp_bias": true}
            """);
        Assert.Equal(3, c.KvHeadCount);          // default = heads
        Assert.Equal(4, c.HeadDim);
        Assert.Equal(2048, c.MaxPositionEmbeddings);
        Assert.Equal(1e-6, c.NormEpsilon);
        Assert.True(c.QkvBias && c.OutputBias && c.MlpBias);
        Assert.Equal(10000.0, c.Layers[1].Rope!.Theta);
    }

    [Fact]
    public void Llama3RopeInBothForms()
    {
        var old = ModelConfig.Parse(Llama32);
        var v5 = ModelConfig.Parse(Llama32v5);
        foreach (var c in new[] { old, v5 })
        {
            Assert.True(c.TieWordEmbeddings);
            Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
            Assert.Equal(64, c.HeadDim);
            var rope = c.Layers[15].Rope!;
            Assert.Equal(RopeType.Llama3, rope.Type);
            Assert.Equal(500000.0, rope.Theta);
            Assert.Equal(32.0, rope.Factor);
            Assert.Equal(1.0, rope.LowFreqFactor);
            Assert.Equal(4.0, rope.HighFreqFactor);
            Assert.Equal(8192, rope.OriginalMaxPositionEmbeddings);
            Assert.Equal(131072, rope.MaxPositionEmbeddings);
        }
        Assert.Equal(old.Layers[0].Rope, v5.Layers[0].Rope);
    }

    [Fact]
    public void HeadDimMayDifferFromHiddenOverHeads()
    {
        var c = ModelConfig.Parse("""
            {"model_type": "mistral", "vocab_size": 131072, "hidden_size": 5120,
             "intermediate_size": 14336, "num_hidden_layers": 40, "num_attention_heads": 32,
             "num_key_value_heads": 8, "head_dim": 128, "sliding_window": null,
             "rope_theta": 1000000.0, "max_position_embeddings": 1024000}
            """);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(4096, c.QueryWidth);
        Assert.Equal(1024, c.KvWidth);
        Assert.All(c.Layers, l => Assert.Null(l.SlidingWindow));
        Assert.All(c.Layers, l => Assert.Equal(AttentionLayerType.FullAttention, l.Type));
    }

    [Fact]
    public void MistralSlidingWindow()
    {
        // Mistral-7B-v0.1: a window of 4096 on every layer.
        var c = ModelConfig.Parse("""
            {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
             "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
             "max_position_embeddings": 32768, "model_type": "mistral",
             "num_attention_heads": 32, "num_hidden_layers": 4, "num_key_value_heads": 8,
             "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
             "tie_word_embeddings": false, "vocab_size": 32000}
            """);
        Assert.Equal(ModelFamily.Mistral, c.Family);
        Assert.All(c.Layers, l => Assert.Equal(4096, l.SlidingWindow));
        Assert.All(c.Layers, l => Assert.Equal(AttentionLayerType.SlidingAttention, l.Type));
        Assert.False(c.QkvBias || c.OutputBias);

        // Absent: transformers' default window 4096; null: none.
        const string Base = """
            "model_type": "mistral", "vocab_size": 8, "hidden_size": 8,
            "intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2
            """;
        Assert.Equal(4096, ModelConfig.Parse("{" + Base + "}").Layers[1].SlidingWindow);
        Assert.Null(ModelConfig.Parse("{" + Base + ", \"sliding_window\": null}")
            .Layers[1].SlidingWindow);
        Assert.Equal(131072, ModelConfig.Parse("{" + Base + "}").MaxPositionEmbeddings);
    }

    private const string Qwen2Base = """
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
        "num_hidden_layers": 6, "num_attention_heads": 14, "num_key_value_heads": 2,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-06,
        "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu"
        """;

    [Fact]
    public void Qwen2BiasTieAndNoWindowByDefault()
    {
        // Qwen2.5-0.5B style (4.x): use_sliding_window false, tied embeddings.
        var c = ModelConfig.Parse("{" + Qwen2Base + """
            , "max_window_layers": 4, "rope_theta": 1000000.0, "sliding_window": 32768,
            "tie_word_embeddings": true, "use_sliding_window": false, "rope_scaling": null}
            """);
        Assert.Equal(ModelFamily.Qwen2, c.Family);
        Assert.True(c.QkvBias);
        Assert.False(c.OutputBias);
        Assert.False(c.MlpBias);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(64, c.HeadDim);
        Assert.All(c.Layers, l => Assert.Null(l.SlidingWindow));
        Assert.Equal(1000000.0, c.Layers[0].Rope!.Theta);
        // Qwen2's default tie is false.
        Assert.False(ModelConfig.Parse("{" + Qwen2Base + "}").TieWordEmbeddings);
    }

    [Fact]
    public void Qwen2WindowFromMaxWindowLayers()
    {
        // Layers i >= max_window_layers slide when use_sliding_window is set.
        var c = ModelConfig.Parse("{" + Qwen2Base + """
            , "use_sliding_window": true, "sliding_window": 16, "max_window_layers": 4}
            """);
        Assert.Equal(new int?[] { null, null, null, null, 16, 16 },
            c.Layers.Select(l => l.SlidingWindow));
        Assert.Equal(AttentionLayerType.SlidingAttention, c.Layers[4].Type);
        Assert.Equal(AttentionLayerType.FullAttention, c.Layers[3].Type);
        // Defaults: sliding_window 4096, max_window_layers 28 (beyond these 6 layers).
        var d = ModelConfig.Parse("{" + Qwen2Base + ", \"use_sliding_window\": true}");
        Assert.All(d.Layers, l => Assert.Null(l.SlidingWindow));
    }

    [Fact]
    public void Qwen2LayerTypesWin()
    {
        // transformers 5.x writes layer_types; they override max_window_layers.
        var c = ModelConfig.Parse("{" + Qwen2Base + """
            , "use_sliding_window": true, "sliding_window": 8, "max_window_layers": 0,
            "layer_types": ["sliding_attention", "full_attention", "sliding_attention",
                            "full_attention", "full_attention", "sliding_attention"],
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}
            """);
        Assert.Equal(new int?[] { 8, null, 8, null, null, 8 },
            c.Layers.Select(l => l.SlidingWindow));
        Assert.Equal(1000000.0, c.Layers[5].Rope!.Theta);
        // Sliding labels without use_sliding_window: no window (transformers attends fully).
        var off = ModelConfig.Parse("{" + Qwen2Base + """
            , "use_sliding_window": false, "sliding_window": 8,
            "layer_types": ["sliding_attention", "full_attention", "full_attention",
                            "full_attention", "full_attention", "full_attention"]}
            """);
        Assert.Equal(AttentionLayerType.SlidingAttention, off.Layers[0].Type);
        Assert.Null(off.Layers[0].SlidingWindow);
        // Wrong length, unknown label.
        var e = Assert.Throws<ModelFormatException>(() => ModelConfig.Parse("{" + Qwen2Base
            + ", \"layer_types\": [\"full_attention\"]}", "q/config.json"));
        Assert.Contains("layer_types has 1 entries but num_hidden_layers is 6", e.Message);
        Assert.Equal("q/config.json", e.FilePath);
        Assert.Contains("chunked_attention", Assert.Throws<ModelFormatException>(() =>
            ModelConfig.Parse("{" + Qwen2Base + ", \"layer_types\": [\"chunked_attention\","
                + "\"full_attention\",\"full_attention\",\"full_attention\",\"full_attention\","
                + "\"full_attention\"]}")).Message);
    }

    [Fact]
    public void RopeParametersPerLayerType()
    {
        var c = ModelConfig.Parse("{" + Qwen2Base + """
            , "use_sliding_window": true, "sliding_window": 8,
            "layer_types": ["full_attention", "sliding_attention", "full_attention",
                            "sliding_attention", "full_attention", "sliding_attention"],
            "rope_parameters": {
              "full_attention": {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                                 "original_max_position_embeddings": 8192},
              "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}}
            """);
        var full = c.Layers[0].Rope!;
        var sliding = c.Layers[1].Rope!;
        Assert.Equal(RopeType.Yarn, full.Type);
        Assert.Equal(4.0, full.Factor);
        Assert.Equal(8192, full.OriginalMaxPositionEmbeddings);
        Assert.Equal(1000000.0, full.Theta);
        Assert.Equal(RopeType.Default, sliding.Type);
        Assert.Equal(10000.0, sliding.Theta);
        Assert.Same(full, c.Layers[2].Rope);
        Assert.Same(sliding, c.Layers[5].Rope);

        var missing = Assert.Throws<ModelFormatException>(() => ModelConfig.Parse("{" + Qwen2Base
            + """
            , "use_sliding_window": true, "sliding_window": 8, "max_window_layers": 3,
            "rope_parameters": {"full_attention": {"rope_type": "default"}}}
            """));
        Assert.Contains("\"sliding_attention\"", missing.Message);
    }

    [Fact]
    public void RopeScalingTypesOldAndNewNames()
    {
        const string Base = """
            "model_type": "llama", "vocab_size": 8, "hidden_size": 64,
            "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4,
            "max_position_embeddings": 4096
            """;
        RopeParameters Rope(string extra) => ModelConfig.Parse("{" + Base + extra + "}")
            .Layers[0].Rope!;
        // "type" (older) and "rope_type".
        var linear = Rope(""", "rope_scaling": {"type": "linear", "factor": 2.0}""");
        Assert.Equal((RopeType.Linear, 2.0, 10000.0), (linear.Type, linear.Factor, linear.Theta));
        var dynamic = Rope("""
            , "rope_theta": 5e5, "rope_scaling": {"rope_type": "dynamic", "factor": 3}
            """);
        Assert.Equal((RopeType.Dynamic, 3.0, 5e5), (dynamic.Type, dynamic.Factor, dynamic.Theta));
        var dynamicV5 = Rope("""
            , "rope_parameters": {"rope_type": "dynamic", "factor": 3, "rope_theta": 5e5}
            """);
        Assert.Equal(dynamic, dynamicV5);
        var yarn = Rope("""
            , "rope_scaling": {"type": "yarn", "factor": 4.0, "beta_fast": 0, "mscale": 0.707,
                               "mscale_all_dim": 0.707, "original_max_position_embeddings": 1024,
                               "truncate": false}
            """);
        Assert.Equal(32, yarn.BetaFast);     // 0 means the default, as `or 32` in transformers
        Assert.Equal(1, yarn.BetaSlow);
        Assert.Equal(0.707, yarn.Mscale);
        Assert.False(yarn.Truncate);
        Assert.Equal(1024, yarn.OriginalMaxPositionEmbeddings);
        // A top-level original_max_position_embeddings wins (standardize_rope_params).
        var yarnTop = Rope("""
            , "original_max_position_embeddings": 2048,
            "rope_scaling": {"type": "yarn", "factor": 2.0,
                             "original_max_position_embeddings": 1024}
            """);
        Assert.Equal(2048, yarnTop.OriginalMaxPositionEmbeddings);
        // Absent everywhere: max_position_embeddings.
        Assert.Equal(4096, Rope(""", "rope_scaling": {"type": "yarn", "factor": 2.0}""")
            .OriginalMaxPositionEmbeddings);
        // rope_scaling (non-empty) wins over rope_parameters, as convert_rope_params_to_dict.
        Assert.Equal(RopeType.Linear, Rope("""
            , "rope_scaling": {"type": "linear", "factor": 2.0},
            "rope_parameters": {"rope_type": "default", "rope_theta": 3.0}
            """).Type);

        var unsupported = Assert.Throws<ModelFormatException>(() =>
            Rope(""", "rope_scaling": {"rope_type": "longrope", "factor": 2.0}"""));
        Assert.Contains("\"longrope\" is not supported", unsupported.Message);
        Assert.Contains("needs \"factor\"", Assert.Throws<ModelFormatException>(() =>
            Rope(""", "rope_scaling": {"rope_type": "linear"}""")).Message);
        Assert.Contains("low_freq_factor", Assert.Throws<ModelFormatException>(() =>
            Rope("""
                , "rope_scaling": {"rope_type": "llama3", "factor": 8,
                "high_freq_factor": 4, "original_max_position_embeddings": 8192}
                """)).Message);
    }

    [Fact]
    public void Gpt2Config()
    {
        // openai-community/gpt2's config.json.
        var c = ModelConfig.Parse("""
            {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
             "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1,
             "eos_token_id": 50256, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
             "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
             "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1,
             "summary_activation": null, "vocab_size": 50257}
            """);
        Assert.Equal(ModelFamily.Gpt2, c.Family);
        Assert.Equal((50257, 768, 3072, 12, 12, 12, 64, 1024),
            (c.VocabSize, c.HiddenSize, c.IntermediateSize, c.LayerCount, c.HeadCount,
             c.KvHeadCount, c.HeadDim, c.MaxPositionEmbeddings));
        Assert.Equal(Activation.GeluNew, c.Activation);
        Assert.Equal("gelu_new", c.ActivationName);
        Assert.Equal(NormKind.LayerNorm, c.Norm);
        Assert.Equal(1e-5, c.NormEpsilon);
        Assert.True(c.TieWordEmbeddings);          // GPT-2's default
        Assert.True(c.QkvBias && c.OutputBias && c.MlpBias);
        Assert.Equal(PositionEncoding.Learned, c.Positions);
        Assert.All(c.Layers, l => Assert.Null(l.Rope));
        Assert.Equal([50256], c.EosTokenIds);

        var small = ModelConfig.Parse("""
            {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": 100,
             "n_positions": 64, "vocab_size": 99, "tie_word_embeddings": false,
             "activation_function": "gelu"}
            """);
        Assert.Equal(100, small.IntermediateSize);
        Assert.False(small.TieWordEmbeddings);
        Assert.Equal(Activation.Gelu, small.Activation);
    }

    [Fact]
    public void ClearErrors()
    {
        var arch = Assert.Throws<ModelFormatException>(() =>
            ModelConfig.Parse("""{"model_type": "bert", "hidden_size": 8}""", "m/config.json"));
        Assert.Contains("model_type \"bert\" is not supported", arch.Message);
        Assert.Contains("llama, mistral, qwen2, gpt2", arch.Message);
        Assert.StartsWith("m/config.json", arch.Message);

        const string Llama = """
            "model_type": "llama", "vocab_size": 8, "intermediate_size": 8,
            "num_hidden_layers": 1
            """;
        var missing = Assert.Throws<ModelFormatException>(() =>
            ModelConfig.Parse("{" + Llama + ", \"num_attention_heads\": 2}"));
        Assert.Contains("\"hidden_size\" is missing", missing.Message);
        var indivisible = Assert.Throws<ModelFormatException>(() =>
            ModelConfig.Parse("{" + Llama + ", \"hidden_size\": 10, \"num_attention_heads\": 4}"));
        Assert.Contains("hidden_size (10) is not divisible by num_attention_heads (4)",
            indivisible.Message);
        // With head_dim given, hidden need not divide.
        Assert.Equal(6, ModelConfig.Parse("{" + Llama
            + ", \"hidden_size\": 10, \"num_attention_heads\": 4, \"head_dim\": 6}").HeadDim);
        var gqa = Assert.Throws<ModelFormatException>(() => ModelConfig.Parse("{" + Llama
            + ", \"hidden_size\": 12, \"num_attention_heads\": 6, \"num_key_value_heads\": 4}"));
        Assert.Contains("num_attention_heads (6) is not a multiple of num_key_value_heads (4)",
            gqa.Message);
        Assert.Contains("not valid JSON",
            Assert.Throws<ModelFormatException>(() => ModelConfig.Parse("{\"a\": ")).Message);
        Assert.Contains("hidden_act \"tanhh\"", Assert.Throws<ModelFormatException>(() =>
            ModelConfig.Parse("{" + Llama + ", \"hidden_size\": 8, \"num_attention_heads\": 2,"
                + " \"hidden_act\": \"tanhh\"}")).Message);
        Assert.Contains("not an integer", Assert.Throws<ModelFormatException>(() =>
            ModelConfig.Parse("{" + Llama + ", \"hidden_size\": \"8\","
                + " \"num_attention_heads\": 2}")).Message);
        Assert.Contains("neither model_type nor architectures",
            Assert.Throws<ModelFormatException>(() => ModelConfig.Parse("{}")).Message);
    }

    [Fact]
    public void LoadNamesThePath()
    {
        using var dir = new TempDir();
        string path = dir.Write("config.json", Llama4x);
        Assert.Equal(path, ModelConfig.Load(dir.Path).SourcePath);
        dir.Write("config.json", """{"model_type": "phi3"}""");
        var e = Assert.Throws<ModelFormatException>(() => ModelConfig.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(path, e.Message);
        Assert.Throws<FileNotFoundException>(() =>
            ModelConfig.Load(Path.Combine(dir.Path, "nope.json")));
    }
}
