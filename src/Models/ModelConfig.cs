namespace Managed.Models;

/// <summary>The model families whose config.json and checkpoints are read.</summary>
public enum ModelFamily : byte
{
    /// <summary>model_type "llama": RMSNorm, RoPE, GQA, SwiGLU; optional attention and MLP
    /// bias.</summary>
    Llama,
    /// <summary>model_type "mistral": Llama's blocks plus a sliding window.</summary>
    Mistral,
    /// <summary>model_type "qwen2": Llama's blocks, q/k/v bias, per-layer sliding window.
    /// </summary>
    Qwen2,
    /// <summary>model_type "gpt2": LayerNorm, learned positions, GELU MLP, Conv1D weights.
    /// </summary>
    Gpt2,
}

/// <summary>The MLP activation (config hidden_act / activation_function).</summary>
public enum Activation : byte
{
    /// <summary>"silu" / "swish": x·σ(x).</summary>
    Silu,
    /// <summary>"gelu": x·Φ(x), exact (erf).</summary>
    Gelu,
    /// <summary>"gelu_new": 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    GeluNew,
    /// <summary>"gelu_pytorch_tanh": the same tanh formula as <see cref="GeluNew"/>.</summary>
    GeluPytorchTanh,
    /// <summary>"gelu_fast": 0.5·x·(1 + tanh(0.7978845608·x·(1 + 0.044715·x²))).</summary>
    GeluFast,
    /// <summary>"quick_gelu": x·σ(1.702·x).</summary>
    QuickGelu,
    /// <summary>"relu": max(x, 0).</summary>
    Relu,
}

/// <summary>The normalization layer.</summary>
public enum NormKind : byte
{
    /// <summary>RMSNorm: x / √(mean(x²) + ε) · w.</summary>
    RmsNorm,
    /// <summary>LayerNorm: (x − mean) / √(var + ε) · w + b.</summary>
    LayerNorm,
}

/// <summary>How token positions enter the model.</summary>
public enum PositionEncoding : byte
{
    /// <summary>Rotary embeddings on q and k (<see cref="LayerAttention.Rope"/>).</summary>
    Rotary,
    /// <summary>A learned position table added to the token embeddings (GPT-2's wpe).</summary>
    Learned,
}

/// <summary>A layer's attention type label (transformers 5.x <c>layer_types</c>).</summary>
public enum AttentionLayerType : byte
{
    /// <summary>"full_attention".</summary>
    FullAttention,
    /// <summary>"sliding_attention".</summary>
    SlidingAttention,
}

/// <summary>
/// The attention of one decoder layer. <see cref="SlidingWindow"/> W, when set, lets query q
/// see keys k with q − W &lt; k ≤ q (W keys including itself), transformers' sliding window
/// mask; it is null for full causal attention, including a layer labelled
/// <see cref="AttentionLayerType.SlidingAttention"/> whose config has no window (transformers
/// then attends fully too).
/// </summary>
/// <param name="Index">The layer index.</param>
/// <param name="Type">The layer's type label.</param>
/// <param name="SlidingWindow">The window in keys, or null.</param>
/// <param name="Rope">The layer's RoPE, or null for learned positions (GPT-2).</param>
public sealed record LayerAttention(int Index, AttentionLayerType Type, int? SlidingWindow,
    RopeParameters? Rope)
{
    /// <summary>SlidingWindow is not null.</summary>
    public bool IsSliding => SlidingWindow is not null;
}

/// <summary>
/// A Hugging Face config.json normalized across families: immutable, every default applied
/// as transformers applies it. Read it with <see cref="Load"/> or <see cref="Parse"/>; GPT-2's
/// n_embd, n_layer, n_head, n_positions and n_inner land in the same properties as Llama's
/// names.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>The file it was read from (or the name given to <see cref="Parse"/>).</summary>
    public required string SourcePath { get; init; }

    /// <summary>The family.</summary>
    public required ModelFamily Family { get; init; }

    /// <summary>model_type as written.</summary>
    public required string ModelType { get; init; }

    /// <summary>vocab_size (GPT-2: vocab_size, default 50257).</summary>
    public required int VocabSize { get; init; }

    /// <summary>hidden_size (GPT-2: n_embd).</summary>
    public required int HiddenSize { get; init; }

    /// <summary>intermediate_size (GPT-2: n_inner, default 4 × n_embd).</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>num_hidden_layers (GPT-2: n_layer).</summary>
    public required int LayerCount { get; init; }

    /// <summary>num_attention_heads (GPT-2: n_head).</summary>
    public required int HeadCount { get; init; }

    /// <summary>num_key_value_heads (default: HeadCount; GPT-2: HeadCount).</summary>
    public required int KvHeadCount { get; init; }

    /// <summary>head_dim (default hidden_size / num_attention_heads); may differ from it.
    /// </summary>
    public required int HeadDim { get; init; }

    /// <summary>max_position_embeddings (GPT-2: n_positions).</summary>
    public required int MaxPositionEmbeddings { get; init; }

    /// <summary>The norm layer kind.</summary>
    public required NormKind Norm { get; init; }

    /// <summary>rms_norm_eps (GPT-2: layer_norm_epsilon).</summary>
    public required double NormEpsilon { get; init; }

    /// <summary>The MLP activation.</summary>
    public required Activation Activation { get; init; }

    /// <summary>The activation's name as written (hidden_act / activation_function).</summary>
    public required string ActivationName { get; init; }

    /// <summary>tie_word_embeddings: the LM head reuses the token embedding (default false for
    /// Llama, Mistral and Qwen2, true for GPT-2).</summary>
    public required bool TieWordEmbeddings { get; init; }

    /// <summary>q, k and v projections carry a bias (Qwen2 always; Llama attention_bias;
    /// GPT-2's c_attn always).</summary>
    public required bool QkvBias { get; init; }

    /// <summary>The attention output projection carries a bias (Llama attention_bias; GPT-2
    /// always; Qwen2 and Mistral never).</summary>
    public required bool OutputBias { get; init; }

    /// <summary>MLP projections carry biases (Llama mlp_bias; GPT-2 always).</summary>
    public required bool MlpBias { get; init; }

    /// <summary>Rotary or learned positions.</summary>
    public required PositionEncoding Positions { get; init; }

    /// <summary>bos_token_id (an int or a list; empty when absent or null).</summary>
    public required IReadOnlyList<int> BosTokenIds { get; init; }

    /// <summary>eos_token_id (an int or a list; empty when absent or null).</summary>
    public required IReadOnlyList<int> EosTokenIds { get; init; }

    /// <summary>One entry per layer: type label, sliding window, RoPE.</summary>
    public required IReadOnlyList<LayerAttention> Layers { get; init; }

    /// <summary>HeadCount × HeadDim: the width of q and of the attention output.</summary>
    public int QueryWidth => HeadCount * HeadDim;

    /// <summary>KvHeadCount × HeadDim: the width of k and v.</summary>
    public int KvWidth => KvHeadCount * HeadDim;

    /// <summary>Reads <paramref name="path"/>: a config.json, or a directory holding one.
    /// </summary>
    /// <exception cref="FileNotFoundException">No config.json there.</exception>
    /// <exception cref="ModelFormatException">Invalid JSON, an unsupported model_type, a
    /// missing or inconsistent field; the message names the file and the field.</exception>
    public static ModelConfig Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            path = System.IO.Path.Combine(path, "config.json");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such config file.", path);
        return ConfigReader.Read(File.ReadAllBytes(path), path);
    }

    /// <summary>Reads config.json text; <paramref name="sourceName"/> names it in errors.
    /// </summary>
    /// <exception cref="ModelFormatException">As <see cref="Load"/>.</exception>
    public static ModelConfig Parse(string json, string sourceName = "config.json")
    {
        ArgumentNullException.ThrowIfNull(json);
        return ConfigReader.Read(System.Text.Encoding.UTF8.GetBytes(json), sourceName);
    }
}
