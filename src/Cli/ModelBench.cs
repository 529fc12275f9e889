using System.Diagnostics;
using System.Globalization;
using Managed.Kernels.Matmul;
using Managed.Models;
using Managed.Tensors;

namespace Managed.Cli;

/// <summary>
/// `bench --model DIR`: generation speed of a model, per batch size b. Every sequence gets
/// random prompt ids (--prompt-tokens, seed 1); the prompts are prefilled one sequence after
/// another (time to first token: all b prefills and the first argmax), then greedy batched
/// decode steps run the b sequences together until each has --new-tokens new tokens (the
/// first comes from the prefill, as in Hugging Face's generate). Decode tokens/s =
/// b x steps / decode time; generate tokens/s = b x new tokens / (prefill + decode), which is
/// what HF's generate is timed by. The bound: each decode step reads the weight matrices
/// (<see cref="TransformerModel.WeightBytes"/>) and the KV cache at the mean length of the
/// decode steps, so bound tokens/s = b x bandwidth / bytes per step, with the bandwidth
/// measured in the same run as `bench --decode` does (host: sums of 1 GiB on all threads;
/// GPU: a device-to-device copy, read + written). One untimed warm-up generation (it
/// compiles GPU kernels and maps the weights in), then --runs timed ones; medians.
/// </summary>
internal static class ModelBench
{
    public static int Run(CliOptions o, CliContext c)
    {
        int[] batches = o.Batches ?? [o.Batch];
        int prompt = o.PromptTokens ?? 128, fresh = o.NewTokens ?? 128, runs = o.Runs ?? 3;
        if (fresh < 2)
            throw new UsageException($"--new-tokens {fresh}: at least 2 are needed (the first "
                + "comes from the prefill, the rest from decode steps)");
        string directory = o.Model!;
        using var csv = o.Output is null ? null : new StreamWriter(o.Output);
        csv?.WriteLine("model,device,batch,prompt_tokens,new_tokens,ttft_ms,prefill_tps,"
            + "decode_tps,generate_tps,weight_bytes,kv_bytes,bandwidth_gbps,bound_tps,share"
            + ",linear_precision");
        foreach (var precision in o.LinearPrecisions ?? [LinearPrecision.Exact])
        {
            using var model = c.OpenModel(new ModelRequest(directory, o.Device, o.Attention,
                MaxBatch: batches.Max(), MaxLength: prompt + fresh, HostThreads: o.Threads,
                LinearPrecision: precision));
            Run(o, c, model, directory, batches, prompt, fresh, runs, precision, csv);
        }
        return 0;
    }

    private static void Run(CliOptions o, CliContext c, ICausalModel model, string directory,
        int[] batches, int prompt, int fresh, int runs, LinearPrecision precision,
        StreamWriter? csv)
    {
        var config = model.Config;
        long weightBytes = ModelFactory.WeightBytes(model);
        int cacheElement = ModelFactory.CacheType(model) switch
        {
            DataType.Float16 or DataType.BFloat16 => 2,
            _ => 4,
        };
        var device = model.Device;
        double bandwidth = device.IsHost ? DecodeBench.HostReadBandwidth()
            : DecodeBench.DeviceCopyBandwidth(device);
        c.Out.WriteLine(string.Create(Invariant, $"model: {directory} ({config.ModelType}, "
            + $"{config.LayerCount} layers, hidden {config.HiddenSize}, "
            + $"{config.HeadCount}/{config.KvHeadCount} heads, vocab {config.VocabSize}); "
            + $"weights read per step {weightBytes / 1e6:F1} MB"));
        string probe = device.IsHost ? "read bandwidth {0:F1} GB/s (sums of 1 GiB, all threads)"
            : "copy bandwidth {0:F1} GB/s (device-to-device 1 GiB, read + written)";
        c.Out.WriteLine(string.Create(Invariant, $"device: {device.Name}; ")
            + string.Format(Invariant, probe, bandwidth)
            + $"; prompt {prompt} tokens, {fresh} new (greedy), median of {runs} runs; "
            + $"linear precision {CliOptions.NameOf(precision)}");
        c.Out.WriteLine($"{"batch",5} {"TTFT ms",9} {"prefill/s",10} {"decode/s",9} "
            + $"{"generate/s",10} {"MB/step",8} {"bound/s",9} {"share",6}");
        foreach (int b in batches)
        {
            var (ttft, decode) = Time(model, b, prompt, fresh, runs);
            int steps = fresh - 1;
            double prefillRate = b * prompt / ttft;
            double decodeRate = b * steps / decode;
            double generateRate = b * fresh / (ttft + decode);
            double meanLength = prompt + steps / 2.0;   // keys a step reads, on average
            double kvBytes = (double)config.LayerCount * b * config.KvHeadCount * meanLength
                * 2 * config.HeadDim * cacheElement;
            double stepBytes = weightBytes + kvBytes;
            double bound = b * bandwidth * 1e9 / stepBytes;
            c.Out.WriteLine(string.Create(Invariant, $"{b,5} {ttft * 1e3,9:F1} {prefillRate,10:F1} "
                + $"{decodeRate,9:F2} {generateRate,10:F2} {stepBytes / 1e6,8:F1} {bound,9:F2} "
                + $"{decodeRate / bound,6:P1}"));
            csv?.WriteLine(string.Create(Invariant, $"{Path.GetFileName(Path.GetFullPath(directory)
                .TrimEnd('/'))},{device.Name.Replace(',', ' ')},{b},{prompt},{fresh},"
                + $"{ttft * 1e3:F2},{prefillRate:F2},{decodeRate:F3},{generateRate:F3},"
                + $"{weightBytes},{kvBytes:F0},{bandwidth:F2},{bound:F3},"
                + $"{decodeRate / bound:F4},{CliOptions.NameOf(precision)}"));
            csv?.Flush();
        }
    }

    /// <summary>Median seconds of the prefill (to the first token) and of the decode steps
    /// over <paramref name="runs"/> generations after one warm-up.</summary>
    private static (double Prefill, double Decode) Time(ICausalModel model, int batch,
        int prompt, int fresh, int runs)
    {
        var rng = new Random(1);
        var prompts = new int[batch][];
        for (int s = 0; s < batch; s++)
        {
            prompts[s] = new int[prompt];
            for (int i = 0; i < prompt; i++) prompts[s][i] = rng.Next(model.VocabSize);
        }
        var logits = new float[(long)batch * model.VocabSize];
        var tokens = new int[batch];
        var prefills = new List<double>();
        var decodes = new List<double>();
        for (int run = 0; run <= runs; run++)
        {
            model.Reset();
            long t0 = Stopwatch.GetTimestamp();
            for (int s = 0; s < batch; s++)
            {
                var row = logits.AsSpan(s * model.VocabSize, model.VocabSize);
                model.Append(s, prompts[s], row);
                tokens[s] = ArgMax(row);
            }
            long t1 = Stopwatch.GetTimestamp();
            for (int step = 1; step < fresh; step++)
            {
                model.Step(tokens, logits);
                for (int s = 0; s < batch; s++)
                    tokens[s] = ArgMax(logits.AsSpan(s * model.VocabSize, model.VocabSize));
            }
            long t2 = Stopwatch.GetTimestamp();
            if (run == 0) continue;   // the warm-up
            prefills.Add(Stopwatch.GetElapsedTime(t0, t1).TotalSeconds);
            decodes.Add(Stopwatch.GetElapsedTime(t1, t2).TotalSeconds);
        }
        return (Median(prefills), Median(decodes));
    }

    private static int ArgMax(ReadOnlySpan<float> row) =>
        System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row);

    private static double Median(List<double> xs)
    {
        xs.Sort();
        int n = xs.Count;
        return n % 2 == 1 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
    }

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
}
