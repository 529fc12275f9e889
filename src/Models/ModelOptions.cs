using Managed.Kernels.Matmul;
using Managed.Kernels.Registry;
using Managed.Tensors;

namespace Managed.Models;

/// <summary>
/// How a <see cref="TransformerModel"/> is run: the run state's sizes, the attention variant
/// and the KV cache's storage type. The defaults run the model as it was trained.
/// </summary>
public sealed record ModelOptions
{
    /// <summary>Sequences held at once (batched decode steps); default 1.</summary>
    public int MaxBatch { get; init; } = 1;

    /// <summary>Tokens one sequence can hold; null: 2048 for rotary models (RoPE goes past
    /// max_position_embeddings, dynamic NTK is made for it), for learned positions (GPT-2)
    /// the config's max_position_embeddings, at most 2048.</summary>
    public int? MaxLength { get; init; }

    /// <summary>
    /// The attention of every layer, in the registry's vocabulary (e.g.
    /// <c>new VariantSpec(MaskSpec.SinkWindow(4, 256))</c>); default exact causal attention.
    /// A layer's own sliding window (config) is combined with it: a key must pass both.
    /// </summary>
    public VariantSpec Attention { get; init; } = new(MaskSpec.Causal);

    /// <summary>The element type of the KV cache (Float32, Float16, BFloat16); default
    /// Float32. Prefill attends over fp32 keys either way; decode reads the cache.</summary>
    public DataType CacheType { get; init; } = DataType.Float32;

    /// <summary>
    /// Gated attention's output gates (<see cref="AttentionOutputGate"/>, catalog S1): null
    /// (the default) for none, else one entry per layer, an entry null for a layer without a
    /// gate. Each gate's weights must be (heads, hidden) and its bias (heads) for the model's
    /// config; shapes are checked before the checkpoint is opened.
    /// </summary>
    public IReadOnlyList<AttentionOutputGate?>? OutputGates { get; init; }

    /// <summary>Host threads of the model's calls; null: all processors. They are a team
    /// of the caller and HostThreads − 1 workers that spin for 2 ms after each call (a decode
    /// step is many calls of microseconds) before they sleep.</summary>
    public int? HostThreads { get; init; }

    /// <summary>The arithmetic of the linear layers: <see cref="LinearPrecision.Exact"/> (the
    /// default) or the opt-in <see cref="LinearPrecision.WeightType"/>, under which prefill
    /// (more than <see cref="Linear.GemvMaxRows"/> rows) on a CUDA device with fp16 or bf16
    /// weights rounds the activations to the weights' type and multiplies on the tensor cores
    /// (error bound in <see cref="LinearPrecision.WeightType"/>'s documentation); decode steps
    /// and every other device stay exact.</summary>
    public LinearPrecision LinearPrecision { get; init; }

    /// <summary>The options themselves after checking them against
    /// <paramref name="config"/>, with <see cref="MaxLength"/> resolved.</summary>
    /// <exception cref="ArgumentException">A size is not positive, or learned positions
    /// (GPT-2) cannot reach MaxLength, or an output gate's count or shape does not fit the
    /// config.</exception>
    internal ModelOptions Resolve(ModelConfig config)
    {
        int length = MaxLength ?? (config.Positions == PositionEncoding.Rotary ? 2048
            : Math.Min(config.MaxPositionEmbeddings, 2048));
        if (MaxBatch < 1)
            throw new ArgumentException($"MaxBatch must be positive, got {MaxBatch}.");
        if (length < 1)
            throw new ArgumentException($"MaxLength must be positive, got {length}.");
        if (config.Positions == PositionEncoding.Learned && length > config.MaxPositionEmbeddings)
            throw new ArgumentException($"MaxLength {length} exceeds the "
                + $"{config.MaxPositionEmbeddings} learned positions of the model.");
        if (HostThreads is < 1)
            throw new ArgumentException($"HostThreads must be positive, got {HostThreads}.",
                nameof(HostThreads));
        if (!Enum.IsDefined(LinearPrecision))
            throw new ArgumentException($"LinearPrecision {LinearPrecision} is not defined.");
        if (!Enum.IsDefined(CacheType))
            throw new ArgumentException($"CacheType {CacheType} is not an element type.");
        if (OutputGates is { } gates)
        {
            if (gates.Count != config.LayerCount)
                throw new ArgumentException($"OutputGates has {gates.Count} entries; the "
                    + $"model has {config.LayerCount} layers (use null for an ungated layer).",
                    nameof(OutputGates));
            for (int l = 0; l < gates.Count; l++)
                gates[l]?.Check(l, config.HeadCount, config.HiddenSize);
        }
        return this with { MaxLength = length };
    }
}
