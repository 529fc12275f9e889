using Managed.Kernels.Devices;
using Managed.Kernels.Matmul;
using Managed.Kernels.Registry;
using Managed.Models;
using Managed.Tensors;

namespace Managed.Cli;

/// <summary>What a command runs with besides its options: the two writers and how it opens a
/// model.</summary>
internal sealed record CliContext(TextWriter Out, TextWriter Error, ModelOpener OpenModel);

/// <summary>Opens the model a command asks for; the caller disposes it.</summary>
internal delegate ICausalModel ModelOpener(ModelRequest request);

/// <summary>A model a command asks for: the Hugging Face directory, the device, the attention
/// (null: the model's own, exact) and the run state's sizes (null length: the
/// loader's default).</summary>
internal sealed record ModelRequest(string Directory, DeviceKind Device, VariantSpec? Attention,
    int MaxBatch = 1, int? MaxLength = null, int? HostThreads = null,
    LinearPrecision LinearPrecision = LinearPrecision.Exact);

/// <summary>
/// The one place where the front end meets the transformer implementation: a
/// <see cref="ModelRequest"/> in, a <see cref="TransformerModel"/> on the device it names out
/// (the returned model owns the device).
/// </summary>
internal static class ModelFactory
{
    /// <summary>Opens <paramref name="request"/>'s model.</summary>
    public static ICausalModel Open(ModelRequest request)
    {
        var options = new ModelOptions
        {
            MaxBatch = request.MaxBatch,
            MaxLength = request.MaxLength,
            HostThreads = request.HostThreads,
            Attention = request.Attention ?? new ModelOptions().Attention,
            LinearPrecision = request.LinearPrecision,
        };
        var device = request.Device == DeviceKind.Host
            ? ComputeDevice.Host : ComputeDevice.Open(request.Device);
        try
        {
            return new DeviceOwner(TransformerModel.Load(request.Directory, device, options),
                device);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>Bytes of weight matrices one decode step of <paramref name="model"/> reads:
    /// <see cref="TransformerModel.WeightBytes"/>, or for another model its config's matrices
    /// in fp32.</summary>
    public static long WeightBytes(ICausalModel model)
    {
        if (Unwrap(model) is TransformerModel t)
            return t.WeightBytes;
        var c = model.Config;
        long layer = (long)c.HiddenSize * (2 * c.QueryWidth + 2 * c.KvWidth)
            + 3L * c.HiddenSize * c.IntermediateSize;
        return 4 * (c.LayerCount * layer + (long)c.VocabSize * c.HiddenSize);
    }

    /// <summary>The KV cache's element type of <paramref name="model"/> (Float32 for a model
    /// that is not a <see cref="TransformerModel"/>).</summary>
    public static DataType CacheType(ICausalModel model) =>
        Unwrap(model) is TransformerModel t ? t.Options.CacheType : DataType.Float32;

    private static ICausalModel Unwrap(ICausalModel model) =>
        model is DeviceOwner owner ? owner.Inner : model;

    /// <summary>A model that disposes its device after itself.</summary>
    private sealed class DeviceOwner(ICausalModel model, ComputeDevice device) : ICausalModel
    {
        public ICausalModel Inner => model;

        public ModelConfig Config => model.Config;
        public ComputeDevice Device => model.Device;
        public int VocabSize => model.VocabSize;
        public int MaxBatch => model.MaxBatch;
        public int MaxLength => model.MaxLength;
        public int Length(int sequence) => model.Length(sequence);
        public void Reset() => model.Reset();
        public void Append(int sequence, ReadOnlySpan<int> tokens, Span<float> logits) =>
            model.Append(sequence, tokens, logits);
        public void Step(ReadOnlySpan<int> tokens, Span<float> logits) =>
            model.Step(tokens, logits);

        public void Dispose()
        {
            model.Dispose();
            device.Dispose();   // the shared host device ignores it
        }
    }
}

/// <summary>Finds the model that ships in the repository, models/kjv-llama.</summary>
internal static class ShippedModel
{
    /// <summary>The folder, relative to the repository root.</summary>
    public const string RelativePath = "models/kjv-llama";

    /// <summary>models/kjv-llama in the current directory or one above it, else beside or
    /// above the executable (src/Cli/bin/... in a clone).</summary>
    /// <exception cref="DirectoryNotFoundException">Neither has it.</exception>
    public static string Find()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, RelativePath);
                if (File.Exists(Path.Combine(candidate, "config.json")))
                    return candidate;
            }
        throw new DirectoryNotFoundException($"the shipped model ({RelativePath}) is not in the "
            + "current directory, the executable's or any folder above them: pass --model DIR");
    }
}
