using Managed.Kernels.Matmul;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Tensors;
using Half = System.Half;

namespace Managed.Models;

/// <summary>A linear layer: weight (out, in) in its stored type and an optional fp32 bias.
/// </summary>
internal sealed record LinearLayer(WeightMatrix Weight, FloatBuffer? Bias) : IDisposable
{
    /// <summary>y (m, out) = x (m, in) Wᵀ + b.</summary>
    public void Forward(Act x, Act y, int m) => Weight.Linear(x, y, m, Bias?.All);

    public void Dispose()
    {
        Weight.Dispose();
        Bias?.Dispose();
    }
}

/// <summary>A norm's fp32 weight and (LayerNorm) bias.</summary>
internal sealed record NormWeights(FloatBuffer Weight, FloatBuffer? Bias) : IDisposable
{
    public void Dispose()
    {
        Weight.Dispose();
        Bias?.Dispose();
    }
}

/// <summary>The weights of one decoder layer, the same fields for every family (GPT-2's
/// c_attn split into q, k and v; its MLP is Up then Down, with no Gate).</summary>
internal sealed record LayerWeights(NormWeights AttentionNorm, LinearLayer Query,
    LinearLayer Key, LinearLayer Value, LinearLayer Output, NormWeights MlpNorm,
    LinearLayer? Gate, LinearLayer Up, LinearLayer Down) : IDisposable
{
    public void Dispose()
    {
        foreach (var d in new IDisposable?[] { AttentionNorm, Query, Key, Value, Output,
                     MlpNorm, Gate, Up, Down })
            d?.Dispose();
    }
}

/// <summary>
/// Every weight of a model in one layout: matrices [out, in] in their stored type (GPT-2's
/// Conv1D [in, out] transposed once here), norms and biases widened to fp32; matrices copied
/// once into host memory (huge pages) or to the device, so the checkpoint closes after load.
/// </summary>
internal sealed class ModelWeights : IDisposable
{
    public required WeightMatrix Embedding { get; init; }      // (vocab, hidden)
    public WeightMatrix? Positions { get; init; }              // (positions, hidden), GPT-2
    public required LayerWeights[] Layers { get; init; }
    public required NormWeights FinalNorm { get; init; }
    public required WeightMatrix LmHead { get; init; }         // (vocab, hidden), maybe tied

    /// <summary>Bytes of the matrices a decode step reads.</summary>
    public long MatrixBytes => Layers.Sum(l => new[] { l.Query, l.Key, l.Value, l.Output,
        l.Gate, l.Up, l.Down }.Sum(x => x?.Weight.Bytes ?? 0)) + LmHead.Bytes;

    /// <summary>Reads the weights <paramref name="config"/> names from
    /// <paramref name="checkpoint"/> (validated against it first).</summary>
    /// <exception cref="ModelFormatException">A tensor is missing or has another shape or
    /// dtype (names the file and tensor).</exception>
    public static ModelWeights Load(ModelConfig config, SafetensorsCheckpoint checkpoint,
        ComputeDevice device, LinearOptions linear)
    {
        var match = CheckpointSchema.Validate(config, checkpoint);
        var read = new WeightReader(checkpoint, match.Prefix, device, linear);
        return config.Family == ModelFamily.Gpt2 ? Gpt2(config, read) : LlamaLike(config, read);
    }

    private static ModelWeights LlamaLike(ModelConfig c, WeightReader read)
    {
        var layers = new LayerWeights[c.LayerCount];
        for (int i = 0; i < layers.Length; i++)
        {
            string l = $"layers.{i}.";
            LinearLayer Linear(string name, bool bias) => new(read.Matrix(l + name + ".weight"),
                bias ? read.Vector(l + name + ".bias") : null);
            layers[i] = new LayerWeights(
                new(read.Vector(l + "input_layernorm.weight"), null),
                Linear("self_attn.q_proj", c.QkvBias), Linear("self_attn.k_proj", c.QkvBias),
                Linear("self_attn.v_proj", c.QkvBias), Linear("self_attn.o_proj", c.OutputBias),
                new(read.Vector(l + "post_attention_layernorm.weight"), null),
                Linear("mlp.gate_proj", c.MlpBias), Linear("mlp.up_proj", c.MlpBias),
                Linear("mlp.down_proj", c.MlpBias));
        }
        var embedding = read.Matrix("embed_tokens.weight");
        return new ModelWeights
        {
            Embedding = embedding,
            Layers = layers,
            FinalNorm = new(read.Vector("norm.weight"), null),
            LmHead = TiedOrStored(c, read, embedding),
        };
    }

    private static ModelWeights Gpt2(ModelConfig c, WeightReader read)
    {
        int e = c.HiddenSize;
        var layers = new LayerWeights[c.LayerCount];
        for (int i = 0; i < layers.Length; i++)
        {
            string h = $"h.{i}.";
            NormWeights Norm(string name) =>
                new(read.Vector(h + name + ".weight"), read.Vector(h + name + ".bias"));
            LinearLayer Conv(string name, int start = 0, int? count = null) =>
                new(read.Transposed(h + name + ".weight", start, count),
                    read.Vector(h + name + ".bias", start, count));
            layers[i] = new LayerWeights(Norm("ln_1"),
                Conv("attn.c_attn", 0, e), Conv("attn.c_attn", e, e),
                Conv("attn.c_attn", 2 * e, e), Conv("attn.c_proj"), Norm("ln_2"),
                null, Conv("mlp.c_fc"), Conv("mlp.c_proj"));
        }
        var embedding = read.Matrix("wte.weight");
        return new ModelWeights
        {
            Embedding = embedding,
            Positions = read.Matrix("wpe.weight"),
            Layers = layers,
            FinalNorm = new(read.Vector("ln_f.weight"), read.Vector("ln_f.bias")),
            LmHead = TiedOrStored(c, read, embedding),
        };
    }

    // transformers ties lm_head to the embedding when configured, even if a copy is stored.
    private static WeightMatrix TiedOrStored(ModelConfig c, WeightReader read,
        WeightMatrix embedding) =>
        c.TieWordEmbeddings ? embedding : read.Matrix("lm_head.weight", prefixed: false);

    public void Dispose()
    {
        foreach (var layer in Layers)
            layer.Dispose();
        FinalNorm.Dispose();
        Positions?.Dispose();
        if (!ReferenceEquals(LmHead, Embedding))
            LmHead.Dispose();
        Embedding.Dispose();
    }
}

/// <summary>Reads checkpoint tensors into <see cref="WeightMatrix"/> and fp32 vectors.
/// </summary>
internal sealed class WeightReader(SafetensorsCheckpoint checkpoint, string prefix,
    ComputeDevice device, LinearOptions linear)
{
    private SafetensorsTensor Tensor(string name, bool prefixed = true) =>
        checkpoint[prefixed ? prefix + name : name];

    /// <summary>A 2-D tensor as stored, (rows, cols).</summary>
    public WeightMatrix Matrix(string name, bool prefixed = true)
    {
        var t = Tensor(name, prefixed);
        var dims = t.GetIntShape();
        return t.DataType switch
        {
            DataType.Float32 =>
                WeightMatrix.Create(device, t.AsMemory<float>(), dims[0], dims[1], linear),
            DataType.Float16 =>
                WeightMatrix.Create(device, t.AsMemory<Half>(), dims[0], dims[1], linear),
            _ => WeightMatrix.Create(device, t.AsMemory<BFloat16>(), dims[0], dims[1],
                linear),
        };
    }

    /// <summary>Columns [start, start + count) of a Conv1D weight stored [in, out], as an
    /// [count, in] matrix (copied, in the stored type).</summary>
    public WeightMatrix Transposed(string name, int start = 0, int? count = null)
    {
        var t = Tensor(name);
        var dims = t.GetIntShape();
        int n = count ?? dims[1];
        return t.DataType switch
        {
            DataType.Float32 => Transpose(t.AsMemory<float>().Span, dims[0], dims[1], start, n),
            DataType.Float16 => Transpose(t.AsMemory<Half>().Span, dims[0], dims[1], start, n),
            _ => Transpose(t.AsMemory<BFloat16>().Span, dims[0], dims[1], start, n),
        };
    }

    private WeightMatrix Transpose<T>(ReadOnlySpan<T> w, int inputs, int outputs, int start,
        int count) where T : unmanaged
    {
        var result = new T[(long)count * inputs];    // (count, inputs)
        for (int i = 0; i < inputs; i++)
            for (int j = 0; j < count; j++)
                result[(long)j * inputs + i] = w[i * outputs + start + j];
        return WeightMatrix.Create<T>(device, result, count, inputs, linear);
    }

    /// <summary>Elements [start, start + count) of a 1-D tensor, widened to fp32.</summary>
    public FloatBuffer Vector(string name, int start = 0, int? count = null)
    {
        var t = Tensor(name);
        int n = count ?? (int)t.ElementCount;
        var result = new float[n];
        switch (t.DataType)
        {
            case DataType.Float32:
                t.AsMemory<float>().Span.Slice(start, n).CopyTo(result);
                break;
            case DataType.Float16:
                ElementConvert.ToSingle(t.AsMemory<Half>().Span.Slice(start, n), result);
                break;
            default:
                ElementConvert.ToSingle(t.AsMemory<BFloat16>().Span.Slice(start, n), result);
                break;
        }
        return FloatBuffer.From(device.Accelerator, result);
    }
}
