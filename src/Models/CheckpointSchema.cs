namespace Managed.Models;

/// <summary>One tensor a checkpoint holds for a config: its Hugging Face name and shape.
/// </summary>
/// <param name="Name">The full name, prefix included.</param>
/// <param name="Shape">The dims the config implies.</param>
/// <param name="Required">False for a tensor that may be absent (a tied lm_head.weight).
/// </param>
public sealed record TensorSpec(string Name, IReadOnlyList<long> Shape, bool Required = true)
{
    /// <summary>The shape as text, e.g. "[4096, 11008]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {ShapeText}";
}

/// <summary>The outcome of <see cref="CheckpointSchema.Validate"/>.</summary>
/// <param name="Prefix">The prefix the checkpoint's names use: "model." or "" (Llama,
/// Mistral, Qwen2), "transformer." or "" (GPT-2).</param>
/// <param name="Tensors">Every expected tensor, under the names found.</param>
/// <param name="Unused">Tensors of the checkpoint that the schema does not list (GPT-2's
/// attention mask buffers <c>h.{i}.attn.bias</c>, ...), sorted.</param>
public sealed record CheckpointMatch(string Prefix, IReadOnlyList<TensorSpec> Tensors,
    IReadOnlyList<string> Unused);

/// <summary>
/// The tensors each family's checkpoint holds (transformers' state dict names) and a validator
/// that checks a checkpoint against a config before anything is loaded.
/// Llama, Mistral, Qwen2: <c>model.embed_tokens.weight</c> [vocab, hidden];
/// per layer <c>model.layers.{i}.</c> <c>input_layernorm.weight</c> [hidden],
/// <c>self_attn.q_proj.weight</c> [heads·headDim, hidden], <c>k_proj</c>/<c>v_proj</c>
/// [kvHeads·headDim, hidden], <c>o_proj</c> [hidden, heads·headDim] (biases of the output
/// widths where the config has them), <c>post_attention_layernorm.weight</c> [hidden],
/// <c>mlp.gate_proj</c>/<c>up_proj</c> [intermediate, hidden], <c>mlp.down_proj</c>
/// [hidden, intermediate]; <c>model.norm.weight</c> [hidden]; <c>lm_head.weight</c>
/// [vocab, hidden] unless tied. GPT-2 (Conv1D weights stored [in, out]): <c>wte.weight</c>
/// [vocab, n_embd], <c>wpe.weight</c> [n_positions, n_embd]; per layer <c>h.{i}.</c>
/// <c>ln_1</c>, <c>ln_2</c> (weight, bias [n_embd]), <c>attn.c_attn</c> ([n_embd, 3·n_embd],
/// [3·n_embd]), <c>attn.c_proj</c> ([n_embd, n_embd], [n_embd]), <c>mlp.c_fc</c>
/// ([n_embd, n_inner], [n_inner]), <c>mlp.c_proj</c> ([n_inner, n_embd], [n_embd]);
/// <c>ln_f</c>; all with or without the "transformer." prefix; <c>lm_head.weight</c> unless
/// tied.
/// </summary>
public static class CheckpointSchema
{
    /// <summary>The tensors <paramref name="config"/> implies, with the family's usual prefix
    /// ("model." for Llama, Mistral, Qwen2; "transformer." for GPT-2) unless
    /// <paramref name="prefix"/> gives another.</summary>
    public static IReadOnlyList<TensorSpec> Expected(ModelConfig config, string? prefix = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.Family == ModelFamily.Gpt2
            ? Gpt2(config, prefix ?? "transformer.")
            : LlamaLike(config, prefix ?? "model.");
    }

    /// <summary>Checks that <paramref name="checkpoint"/> holds every tensor
    /// <paramref name="config"/> needs, with the shape it implies and a weight dtype (F32,
    /// F16, BF16). The prefix is taken from the checkpoint (GPT-2 with or without
    /// "transformer.", Llama-like with or without "model.").</summary>
    /// <exception cref="ModelFormatException">A tensor is missing (the message names the
    /// checkpoint, the tensor and the expected shape), has another shape (names the file,
    /// the tensor, both shapes and the config), or is not F32, F16 or BF16.</exception>
    public static CheckpointMatch Validate(ModelConfig config, SafetensorsCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(checkpoint);
        string prefix = config.Family == ModelFamily.Gpt2
            ? checkpoint.Contains("transformer.wte.weight") ? "transformer." : ""
            : !checkpoint.Contains("model.embed_tokens.weight")
                && checkpoint.Contains("embed_tokens.weight") ? "" : "model.";
        var expected = Expected(config, prefix);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spec in expected)
        {
            if (!checkpoint.TryGetTensor(spec.Name, out var tensor))
            {
                if (!spec.Required)
                    continue;
                throw new ModelFormatException(checkpoint.Path, spec.Name,
                    $"missing from the checkpoint; {config.SourcePath} implies shape "
                    + $"{spec.ShapeText}.");
            }
            used.Add(spec.Name);
            if (!tensor.Shape.SequenceEqual(spec.Shape))
                throw new ModelFormatException(tensor.File.Path, spec.Name,
                    $"has shape {tensor.ShapeText} but {config.SourcePath} implies "
                    + $"{spec.ShapeText}.");
            if (tensor.DataType is null)
                throw new ModelFormatException(tensor.File.Path, spec.Name,
                    $"is {tensor.DType}; weights must be F32, F16 or BF16.");
        }
        var unused = checkpoint.TensorNames.Where(n => !used.Contains(n))
            .OrderBy(n => n, StringComparer.Ordinal).ToArray();
        return new CheckpointMatch(prefix, expected, unused);
    }

    private static List<TensorSpec> LlamaLike(ModelConfig c, string prefix)
    {
        long hidden = c.HiddenSize, q = c.QueryWidth, kv = c.KvWidth, inter = c.IntermediateSize;
        var specs = new List<TensorSpec>
        {
            new($"{prefix}embed_tokens.weight", [c.VocabSize, hidden]),
        };
        for (int i = 0; i < c.LayerCount; i++)
        {
            string l = $"{prefix}layers.{i}.";
            specs.Add(new($"{l}input_layernorm.weight", [hidden]));
            Linear(specs, $"{l}self_attn.q_proj", q, hidden, c.QkvBias);
            Linear(specs, $"{l}self_attn.k_proj", kv, hidden, c.QkvBias);
            Linear(specs, $"{l}self_attn.v_proj", kv, hidden, c.QkvBias);
            Linear(specs, $"{l}self_attn.o_proj", hidden, q, c.OutputBias);
            specs.Add(new($"{l}post_attention_layernorm.weight", [hidden]));
            Linear(specs, $"{l}mlp.gate_proj", inter, hidden, c.MlpBias);
            Linear(specs, $"{l}mlp.up_proj", inter, hidden, c.MlpBias);
            Linear(specs, $"{l}mlp.down_proj", hidden, inter, c.MlpBias);
        }
        specs.Add(new($"{prefix}norm.weight", [hidden]));
        specs.Add(new("lm_head.weight", [c.VocabSize, hidden], Required: !c.TieWordEmbeddings));
        return specs;
    }

    private static List<TensorSpec> Gpt2(ModelConfig c, string prefix)
    {
        long e = c.HiddenSize, inner = c.IntermediateSize;
        var specs = new List<TensorSpec>
        {
            new($"{prefix}wte.weight", [c.VocabSize, e]),
            new($"{prefix}wpe.weight", [c.MaxPositionEmbeddings, e]),
        };
        for (int i = 0; i < c.LayerCount; i++)
        {
            string h = $"{prefix}h.{i}.";
            Norm(specs, $"{h}ln_1", e);
            Conv1D(specs, $"{h}attn.c_attn", e, 3 * e);
            Conv1D(specs, $"{h}attn.c_proj", e, e);
            Norm(specs, $"{h}ln_2", e);
            Conv1D(specs, $"{h}mlp.c_fc", e, inner);
            Conv1D(specs, $"{h}mlp.c_proj", inner, e);
        }
        Norm(specs, $"{prefix}ln_f", e);
        specs.Add(new("lm_head.weight", [c.VocabSize, e], Required: !c.TieWordEmbeddings));
        return specs;
    }

    // nn.Linear: weight [out, in].
    private static void Linear(List<TensorSpec> specs, string name, long outputs, long inputs,
        bool bias)
    {
        specs.Add(new($"{name}.weight", [outputs, inputs]));
        if (bias)
            specs.Add(new($"{name}.bias", [outputs]));
    }

    // GPT-2's Conv1D: weight [in, out], always a bias.
    private static void Conv1D(List<TensorSpec> specs, string name, long inputs, long outputs)
    {
        specs.Add(new($"{name}.weight", [inputs, outputs]));
        specs.Add(new($"{name}.bias", [outputs]));
    }

    private static void Norm(List<TensorSpec> specs, string name, long width)
    {
        specs.Add(new($"{name}.weight", [width]));
        specs.Add(new($"{name}.bias", [width]));
    }
}
