using System.Text.Json;

namespace Managed.Models;

/// <summary>
/// config.json to <see cref="ModelConfig"/>, with transformers' defaults and rules:
/// LlamaConfig, MistralConfig, Qwen2Config, GPT2Config and
/// <c>RotaryEmbeddingConfigMixin.standardize_rope_params</c>. A field written as JSON null
/// counts as absent (transformers' None), except Mistral's sliding_window, where null means no
/// window and absence means transformers' default 4096.
/// </summary>
internal sealed class ConfigReader
{
    private static readonly string[] Supported = ["llama", "mistral", "qwen2", "gpt2"];
    private const string Full = "full_attention", Sliding = "sliding_attention";

    private readonly JsonElement _root;
    private readonly string _path;

    private ConfigReader(JsonElement root, string path)
    {
        _root = root;
        _path = path;
    }

    public static ModelConfig Read(byte[] json, string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions
            {
                AllowTrailingCommas = true,
                CommentHandling = JsonCommentHandling.Skip,
            });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, null, $"not valid JSON: {e.Message}", e);
        }
        using var _ = document;
        if (document.RootElement.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, null,
                $"the config is a JSON {document.RootElement.ValueKind}, not an object.");
        return new ConfigReader(document.RootElement, path).Read();
    }

    private ModelFormatException Error(string message) => new(_path, null, message);

    private ModelConfig Read()
    {
        string modelType = ModelType();
        return modelType switch
        {
            "gpt2" => ReadGpt2(modelType),
            "llama" => ReadLlamaLike(ModelFamily.Llama, modelType),
            "mistral" => ReadLlamaLike(ModelFamily.Mistral, modelType),
            "qwen2" => ReadLlamaLike(ModelFamily.Qwen2, modelType),
            _ => throw Error($"model_type \"{modelType}\" is not supported; supported: "
                + string.Join(", ", Supported) + "."),
        };
    }

    private string ModelType()
    {
        if (Get("model_type") is { } type)
        {
            if (type.ValueKind != JsonValueKind.String)
                throw Error($"model_type is {type.GetRawText()}, not a string.");
            return type.GetString()!;
        }
        // No model_type: the architecture class names the family.
        if (Get("architectures") is { ValueKind: JsonValueKind.Array } architectures)
        {
            foreach (var a in architectures.EnumerateArray())
            {
                string name = a.ValueKind == JsonValueKind.String ? a.GetString()! : "";
                if (name.StartsWith("Llama", StringComparison.Ordinal)) return "llama";
                if (name.StartsWith("Mistral", StringComparison.Ordinal)) return "mistral";
                if (name.StartsWith("Qwen2", StringComparison.Ordinal)
                    && !name.StartsWith("Qwen2Moe", StringComparison.Ordinal)
                    && !name.StartsWith("Qwen2VL", StringComparison.Ordinal)
                    && !name.StartsWith("Qwen2_5", StringComparison.Ordinal)) return "qwen2";
                if (name.StartsWith("GPT2", StringComparison.Ordinal)) return "gpt2";
            }
            throw Error($"architectures {architectures.GetRawText()} are not supported and "
                + "there is no model_type; supported model types: "
                + string.Join(", ", Supported) + ".");
        }
        throw Error("the config has neither model_type nor architectures; supported model "
            + "types: " + string.Join(", ", Supported) + ".");
    }

    // ----- Llama, Mistral, Qwen2 -----

    private ModelConfig ReadLlamaLike(ModelFamily family, string modelType)
    {
        int vocab = RequiredInt("vocab_size");
        int hidden = RequiredInt("hidden_size");
        int intermediate = RequiredInt("intermediate_size");
        int layers = RequiredInt("num_hidden_layers");
        int heads = RequiredInt("num_attention_heads");
        int kvHeads = OptionalInt("num_key_value_heads") ?? heads;
        CheckPositive("num_key_value_heads", kvHeads);
        int headDim = HeadDim(hidden, heads, OptionalInt("head_dim"), "hidden_size",
            "num_attention_heads");
        if (heads % kvHeads != 0)
            throw Error($"num_attention_heads ({heads}) is not a multiple of "
                + $"num_key_value_heads ({kvHeads}).");
        if (headDim % 2 != 0)
            throw Error($"head_dim {headDim} is odd; RoPE rotates pairs of dims.");
        int maxPositions = OptionalInt("max_position_embeddings") ?? family switch
        {
            ModelFamily.Llama => 2048,
            ModelFamily.Mistral => 4096 * 32,
            _ => 32768,
        };
        CheckPositive("max_position_embeddings", maxPositions);
        double eps = OptionalDouble("rms_norm_eps") ?? 1e-6;
        if (!(eps >= 0))
            throw Error($"rms_norm_eps is {eps}; it must be >= 0.");
        string activationName = OptionalString("hidden_act") ?? "silu";
        bool attentionBias = family == ModelFamily.Llama
            && (OptionalBool("attention_bias") ?? false);
        bool mlpBias = family == ModelFamily.Llama && (OptionalBool("mlp_bias") ?? false);

        var (types, window) = LayerTypes(family, layers);
        var rope = ReadRope(types, headDim, maxPositions);
        var layerList = new LayerAttention[layers];
        for (int i = 0; i < layers; i++)
        {
            int? layerWindow = types[i] == AttentionLayerType.SlidingAttention ? window : null;
            layerList[i] = new LayerAttention(i, types[i], layerWindow, rope[types[i]]);
        }

        return new ModelConfig
        {
            SourcePath = _path,
            Family = family,
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            MaxPositionEmbeddings = maxPositions,
            Norm = NormKind.RmsNorm,
            NormEpsilon = eps,
            Activation = ParseActivation("hidden_act", activationName),
            ActivationName = activationName,
            TieWordEmbeddings = OptionalBool("tie_word_embeddings") ?? false,
            QkvBias = family == ModelFamily.Qwen2 || attentionBias,
            OutputBias = attentionBias,
            MlpBias = mlpBias,
            Positions = PositionEncoding.Rotary,
            BosTokenIds = TokenIds("bos_token_id", family switch
            {
                ModelFamily.Llama or ModelFamily.Mistral => 1,
                _ => null,
            }),
            EosTokenIds = TokenIds("eos_token_id", family switch
            {
                ModelFamily.Llama or ModelFamily.Mistral => 2,
                _ => null,
            }),
            Layers = Array.AsReadOnly(layerList),
        };
    }

    /// <summary>Each layer's type label and the window a sliding layer uses (null: none).
    /// </summary>
    private (AttentionLayerType[] Types, int? Window) LayerTypes(ModelFamily family,
        int layers)
    {
        int? window = null;
        var defaults = new AttentionLayerType[layers];
        switch (family)
        {
            case ModelFamily.Mistral:
                // MistralConfig(sliding_window=4096): absent means 4096, null means none.
                window = Get("sliding_window", keepNull: true) is { } w
                    ? w.ValueKind == JsonValueKind.Null ? null : ToInt("sliding_window", w)
                    : 4096;
                Array.Fill(defaults, window is null
                    ? AttentionLayerType.FullAttention : AttentionLayerType.SlidingAttention);
                break;
            case ModelFamily.Qwen2:
            {
                // Qwen2Config: sliding_window = sliding_window if use_sliding_window else None;
                // layer i slides when a window is set and i >= max_window_layers.
                bool use = OptionalBool("use_sliding_window") ?? false;
                int configured = OptionalInt("sliding_window") ?? 4096;
                window = use ? configured : null;
                int maxWindowLayers = OptionalInt("max_window_layers") ?? 28;
                for (int i = 0; i < layers; i++)
                    defaults[i] = window is not null && i >= maxWindowLayers
                        ? AttentionLayerType.SlidingAttention : AttentionLayerType.FullAttention;
                break;
            }
            default:
                break;      // Llama: every layer full.
        }
        if (window is { } size)
            CheckPositive("sliding_window", size);
        if (family == ModelFamily.Llama || Get("layer_types") is not { } explicitTypes)
            return (defaults, window);

        if (explicitTypes.ValueKind != JsonValueKind.Array)
            throw Error($"layer_types is {explicitTypes.GetRawText()}, not a list.");
        if (explicitTypes.GetArrayLength() != layers)
            throw Error($"layer_types has {explicitTypes.GetArrayLength()} entries but "
                + $"num_hidden_layers is {layers}.");
        var types = new AttentionLayerType[layers];
        int index = 0;
        foreach (var t in explicitTypes.EnumerateArray())
        {
            string? text = t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            types[index] = text switch
            {
                Full => AttentionLayerType.FullAttention,
                Sliding => AttentionLayerType.SlidingAttention,
                _ => throw Error($"layer_types[{index}] is {t.GetRawText()}; supported: "
                    + $"\"{Full}\", \"{Sliding}\"."),
            };
            index++;
        }
        return (types, window);
    }

    // ----- RoPE -----

    /// <summary>The RoPE of each layer type: rope_parameters (5.x; flat, or nested by layer
    /// type) or rope_theta + rope_scaling (4.x), standardized as transformers does.</summary>
    private Dictionary<AttentionLayerType, RopeParameters> ReadRope(AttentionLayerType[] types,
        int headDim, int maxPositions)
    {
        // convert_rope_params_to_dict: a non-empty rope_scaling wins over rope_parameters.
        JsonElement? dict = null;
        string dictName = "rope_parameters";
        if (Get("rope_scaling") is { ValueKind: JsonValueKind.Object } scaling
            && scaling.EnumerateObject().Any())
        {
            dict = scaling;
            dictName = "rope_scaling";
        }
        else if (Get("rope_parameters") is { } parameters)
        {
            if (parameters.ValueKind != JsonValueKind.Object)
                throw Error($"rope_parameters is {parameters.GetRawText()}, not an object.");
            dict = parameters;
        }
        else if (Get("rope_scaling") is { ValueKind: not JsonValueKind.Object } badScaling)
            throw Error($"rope_scaling is {badScaling.GetRawText()}, not an object.");

        double topTheta = OptionalDouble("rope_theta") ?? 10000.0;
        double? topPartial = OptionalDouble("partial_rotary_factor");
        int? topOriginal = OptionalInt("original_max_position_embeddings");
        var result = new Dictionary<AttentionLayerType, RopeParameters>();
        bool nested = dict is { } d
            && (d.TryGetProperty(Full, out _) || d.TryGetProperty(Sliding, out _));
        foreach (var type in types.Distinct())
        {
            string label = type == AttentionLayerType.FullAttention ? Full : Sliding;
            JsonElement? layerDict = dict;
            string name = dictName;
            if (nested)
            {
                if (!dict!.Value.TryGetProperty(label, out var inner)
                    || inner.ValueKind != JsonValueKind.Object)
                    throw Error($"{dictName} is given per layer type but has no \"{label}\" "
                        + "object, which a layer uses.");
                layerDict = inner;
                name = $"{dictName}.{label}";
            }
            // Yarn's truncate is read from the outer dict in transformers, even when nested.
            bool truncate = !(dict is { } outer && outer.TryGetProperty("truncate", out var tr)
                && tr.ValueKind == JsonValueKind.False);
            result[type] = ReadRopeDict(layerDict, name, nested, topTheta, topPartial,
                topOriginal, headDim, maxPositions, truncate);
        }
        return result;
    }

    private RopeParameters ReadRopeDict(JsonElement? dict, string name, bool nested,
        double topTheta, double? topPartial, int? topOriginal, int headDim, int maxPositions,
        bool truncate)
    {
        JsonElement? Field(string key) =>
            dict is { } d && d.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null
                ? v : null;
        double? Number(string key) => Field(key) is { } v
            ? v.ValueKind == JsonValueKind.Number ? v.GetDouble()
                : throw Error($"{name}.{key} is {v.GetRawText()}, not a number.")
            : null;
        double RequiredNumber(string key, string typeName) => Number(key)
            ?? throw Error($"{name}: rope_type \"{typeName}\" needs \"{key}\".");

        string typeText = Field("rope_type") is { ValueKind: JsonValueKind.String } rt
            ? rt.GetString()! : Field("type") is { ValueKind: JsonValueKind.String } t
                ? t.GetString()! : "default";
        RopeType type = typeText switch
        {
            "default" => RopeType.Default,
            "linear" => RopeType.Linear,
            "dynamic" => RopeType.Dynamic,
            "yarn" => RopeType.Yarn,
            "llama3" => RopeType.Llama3,
            _ => throw Error($"{name}: rope_type \"{typeText}\" is not supported; supported: "
                + "default, linear, dynamic, yarn, llama3."),
        };
        double theta = Number("rope_theta") ?? topTheta;
        if (!(theta > 1))
            throw Error($"{name}: rope_theta is {theta}; it must be > 1.");
        double partial = Number("partial_rotary_factor") ?? topPartial ?? 1.0;
        if (partial != 1.0)
            throw Error($"{name}: partial_rotary_factor {partial} is not supported (only 1).");

        // standardize_rope_params: for llama3 and yarn, a top-level
        // original_max_position_embeddings wins (flat form only), else the dict's, else
        // max_position_embeddings.
        int original = (!nested ? topOriginal : null)
            ?? (Number("original_max_position_embeddings") is { } o
                ? ToIntValue($"{name}.original_max_position_embeddings", o) : maxPositions);

        var rope = new RopeParameters
        {
            Type = type,
            Theta = theta,
            Dim = headDim,
            MaxPositionEmbeddings = maxPositions,
        };
        switch (type)
        {
            case RopeType.Linear:
            case RopeType.Dynamic:
                rope = rope with { Factor = RequiredNumber("factor", typeText) };
                if (type == RopeType.Dynamic && headDim <= 2)
                    throw Error($"{name}: dynamic RoPE needs head_dim > 2; got {headDim}.");
                break;
            case RopeType.Yarn:
            {
                CheckPositive($"{name}.original_max_position_embeddings", original);
                if (dict is not { } d || !d.TryGetProperty("factor", out _))
                    throw Error($"{name}: rope_type \"yarn\" needs \"factor\".");
                // An explicit null factor: transformers uses max_position / original.
                double factor = Number("factor") ?? (double)maxPositions / original;
                double betaFast = Number("beta_fast") is { } bf && bf != 0 ? bf : 32;
                double betaSlow = Number("beta_slow") is { } bs && bs != 0 ? bs : 1;
                rope = rope with
                {
                    Factor = factor,
                    OriginalMaxPositionEmbeddings = original,
                    BetaFast = betaFast,
                    BetaSlow = betaSlow,
                    AttentionFactor = Number("attention_factor"),
                    Mscale = Number("mscale"),
                    MscaleAllDim = Number("mscale_all_dim"),
                    Truncate = truncate,
                };
                break;
            }
            case RopeType.Llama3:
            {
                CheckPositive($"{name}.original_max_position_embeddings", original);
                double low = RequiredNumber("low_freq_factor", typeText);
                double high = RequiredNumber("high_freq_factor", typeText);
                if (!(high > low))
                    throw Error($"{name}: high_freq_factor ({high}) must exceed "
                        + $"low_freq_factor ({low}).");
                rope = rope with
                {
                    Factor = RequiredNumber("factor", typeText),
                    OriginalMaxPositionEmbeddings = original,
                    LowFreqFactor = low,
                    HighFreqFactor = high,
                };
                break;
            }
            default:
                break;
        }
        if (!(rope.Factor > 0))
            throw Error($"{name}: factor is {rope.Factor}; it must be > 0.");
        return rope;
    }

    // ----- GPT-2 -----

    private ModelConfig ReadGpt2(string modelType)
    {
        int vocab = OptionalInt("vocab_size") ?? 50257;
        int hidden = OptionalInt("n_embd") ?? OptionalInt("hidden_size") ?? 768;
        int layers = OptionalInt("n_layer") ?? OptionalInt("num_hidden_layers") ?? 12;
        int heads = OptionalInt("n_head") ?? OptionalInt("num_attention_heads") ?? 12;
        int positions = OptionalInt("n_positions") ?? OptionalInt("max_position_embeddings")
            ?? 1024;
        foreach (var (key, value) in new[] { ("vocab_size", vocab), ("n_embd", hidden),
            ("n_layer", layers), ("n_head", heads), ("n_positions", positions) })
            CheckPositive(key, value);
        int inner = OptionalInt("n_inner") ?? 4 * hidden;
        CheckPositive("n_inner", inner);
        int headDim = HeadDim(hidden, heads, null, "n_embd", "n_head");
        double eps = OptionalDouble("layer_norm_epsilon") ?? 1e-5;
        string activationName = OptionalString("activation_function") ?? "gelu_new";
        if (OptionalBool("scale_attn_by_inverse_layer_idx") == true)
            throw Error("scale_attn_by_inverse_layer_idx = true is not supported.");
        if (OptionalBool("scale_attn_weights") == false)
            throw Error("scale_attn_weights = false is not supported.");
        var layerList = new LayerAttention[layers];
        for (int i = 0; i < layers; i++)
            layerList[i] = new LayerAttention(i, AttentionLayerType.FullAttention, null, null);
        return new ModelConfig
        {
            SourcePath = _path,
            Family = ModelFamily.Gpt2,
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = inner,
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = heads,
            HeadDim = headDim,
            MaxPositionEmbeddings = positions,
            Norm = NormKind.LayerNorm,
            NormEpsilon = eps,
            Activation = ParseActivation("activation_function", activationName),
            ActivationName = activationName,
            TieWordEmbeddings = OptionalBool("tie_word_embeddings") ?? true,
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            Positions = PositionEncoding.Learned,
            BosTokenIds = TokenIds("bos_token_id", 50256),
            EosTokenIds = TokenIds("eos_token_id", 50256),
            Layers = Array.AsReadOnly(layerList),
        };
    }

    // ----- fields -----

    private int HeadDim(int hidden, int heads, int? explicitHeadDim, string hiddenName,
        string headsName)
    {
        if (explicitHeadDim is { } headDim)
        {
            CheckPositive("head_dim", headDim);
            return headDim;
        }
        if (hidden % heads != 0)
            throw Error($"{hiddenName} ({hidden}) is not divisible by {headsName} ({heads}) "
                + "and head_dim is not given.");
        return hidden / heads;
    }

    private Activation ParseActivation(string key, string name) => name switch
    {
        "silu" or "swish" => Activation.Silu,
        "gelu" => Activation.Gelu,
        "gelu_new" => Activation.GeluNew,
        "gelu_pytorch_tanh" => Activation.GeluPytorchTanh,
        "gelu_fast" => Activation.GeluFast,
        "quick_gelu" => Activation.QuickGelu,
        "relu" => Activation.Relu,
        _ => throw Error($"{key} \"{name}\" is not supported; supported: silu, swish, gelu, "
            + "gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu."),
    };

    private IReadOnlyList<int> TokenIds(string key, int? familyDefault)
    {
        var value = Get(key, keepNull: true);
        if (value is null)
            return familyDefault is { } id ? [id] : [];
        var v = value.Value;
        if (v.ValueKind == JsonValueKind.Null)
            return [];
        if (v.ValueKind == JsonValueKind.Array)
            return v.EnumerateArray().Select((e, i) => ToInt($"{key}[{i}]", e)).ToArray();
        return [ToInt(key, v)];
    }

    /// <summary>The value of <paramref name="key"/>; null when absent (or JSON null, unless
    /// <paramref name="keepNull"/>).</summary>
    private JsonElement? Get(string key, bool keepNull = false) =>
        _root.TryGetProperty(key, out var value)
        && (keepNull || value.ValueKind != JsonValueKind.Null) ? value : null;

    private int RequiredInt(string key)
    {
        int value = OptionalInt(key) ?? throw Error($"the required field \"{key}\" is missing.");
        CheckPositive(key, value);
        return value;
    }

    private int? OptionalInt(string key) => Get(key) is { } v ? ToInt(key, v) : null;

    private double? OptionalDouble(string key) => Get(key) is { } v
        ? v.ValueKind == JsonValueKind.Number ? v.GetDouble()
            : throw Error($"{key} is {v.GetRawText()}, not a number.")
        : null;

    private bool? OptionalBool(string key) => Get(key) is { } v
        ? v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error($"{key} is {v.GetRawText()}, not true or false."),
        }
        : null;

    private string? OptionalString(string key) => Get(key) is { } v
        ? v.ValueKind == JsonValueKind.String ? v.GetString()
            : throw Error($"{key} is {v.GetRawText()}, not a string.")
        : null;

    private int ToInt(string key, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt32(out int i))
                return i;
            if (v.TryGetDouble(out double d))
                return ToIntValue(key, d);
        }
        throw Error($"{key} is {v.GetRawText()}, not an integer.");
    }

    private int ToIntValue(string key, double d) =>
        d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue
            ? (int)d : throw Error($"{key} is {d}, not an integer.");

    private void CheckPositive(string key, int value)
    {
        if (value <= 0)
            throw Error($"{key} is {value}; it must be positive.");
    }
}
