using Managed.Kernels.Devices;
using Managed.Models;
using Xunit;
using Xunit.Abstractions;

namespace Managed.Tests.Models;

/// <summary>
/// Full forward passes against Hugging Face transformers in fp64 (tests/Fixtures/hf): logits
/// within atol 1e-4 + rtol 1e-4·|ref| for fp32 and bf16 weights (HF's reference for the bf16
/// folders runs the same bf16 values in fp64, so both weight types have the same bound), and
/// the 32 greedy new ids of HF's generate over our own Append/Step loop. On the host here;
/// <see cref="IlgpuModelTests"/> runs a subset on ILGPU's CPU accelerator.
/// </summary>
public sealed class ModelParityTests(ITestOutputHelper output)
{
    internal const double Atol = 1e-4, Rtol = 1e-4;

    public static TheoryData<string> Fixtures => new()
    {
        "llama-gqa", "llama-linear", "llama-dynamic", "llama-yarn", "mistral-window",
        "qwen2-bias", "gpt2", "llama-gqa-bf16", "llama-linear-bf16", "llama-dynamic-bf16",
        "llama-yarn-bf16", "mistral-window-bf16", "qwen2-bias-bf16", "gpt2-bf16",
    };

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Logits_match_hugging_face(string name) =>
        ParityChecks.Logits(HfFixture.Load(name), ComputeDevice.Host, output);

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Greedy_continuation_matches_hugging_face(string name) =>
        ParityChecks.Greedy(HfFixture.Load(name), ComputeDevice.Host);

    // Not llama-dynamic: past max_position_embeddings HF's cached keys keep the rotation of
    // the length they were made at, so a cached decode differs from a full forward by design
    // (the greedy test checks that behaviour against HF's generate).
    [Theory]
    [InlineData("llama-gqa")]
    [InlineData("mistral-window")]
    [InlineData("qwen2-bias")]
    [InlineData("gpt2")]
    public void Decoding_with_the_cache_equals_a_full_forward(string name) =>
        ParityChecks.CachedEqualsFull(HfFixture.Load(name), ComputeDevice.Host, output);
}

/// <summary>The checks, shared by the host and ILGPU test classes.</summary>
internal static class ParityChecks
{
    public static void Logits(HfFixture f, ComputeDevice device, ITestOutputHelper output)
    {
        using var model = TransformerModel.Load(f.Directory, device);
        var logits = new float[f.Logits.Length];
        model.Append(0, f.Ids, logits);
        var (excess, maxAbs) = f.Compare(logits, ModelParityTests.Rtol);
        output.WriteLine($"{f.Name} on {device.Name}: max |logits - HF fp64| = {maxAbs:E3}");
        Assert.True(excess <= ModelParityTests.Atol,
            $"{f.Name}: max |error| {maxAbs:E3} exceeds {ModelParityTests.Atol} + "
            + $"{ModelParityTests.Rtol}·|ref|");
    }

    public static void Greedy(HfFixture f, ComputeDevice device)
    {
        using var model = TransformerModel.Load(f.Directory, device);
        var logits = new float[f.Vocab];
        model.Append(0, f.Ids, logits);
        var ids = new List<int>();
        for (int i = 0; i < f.Greedy.Length; i++)
        {
            int next = HfFixture.ArgMax(logits);
            ids.Add(next);
            if (i + 1 < f.Greedy.Length)
                model.Step([next], logits);
        }
        Assert.Equal(f.Greedy, ids);
    }

    // Prompt then the greedy ids token by token (and in chunks) against one forward over all.
    public static void CachedEqualsFull(HfFixture f, ComputeDevice device,
        ITestOutputHelper output)
    {
        int[] all = [.. f.Ids, .. f.Greedy];
        int vocab = f.Vocab, prompt = f.Ids.Length;
        using var model = TransformerModel.Load(f.Directory, device,
            new ModelOptions { MaxBatch = 2, MaxLength = all.Length });
        var full = new float[all.Length * vocab];
        model.Append(0, all, full);
        model.Reset();
        var cached = new float[all.Length * vocab];
        model.Append(0, f.Ids, cached.AsSpan(0, prompt * vocab));
        for (int i = prompt; i < all.Length; i++)
            model.Step([all[i]], cached.AsSpan(i * vocab, vocab));
        double worst = MaxDiff(full, cached);
        // The same after the prompt through decode chunks (Append to a non-empty sequence).
        model.Reset();
        var chunked = new float[all.Length * vocab];
        model.Append(0, all.AsSpan(0, 3), chunked.AsSpan(0, 3 * vocab));
        model.Append(0, all.AsSpan(3), chunked.AsSpan(3 * vocab));
        double worstChunk = MaxDiff(full, chunked);
        output.WriteLine($"{f.Name}: max |step - full| = {worst:E3}, "
            + $"|chunked - full| = {worstChunk:E3}");
        Assert.True(worst <= 1e-4, $"step vs full: {worst:E3}");
        Assert.True(worstChunk <= 1e-4, $"chunked vs full: {worstChunk:E3}");
    }

    private static double MaxDiff(float[] a, float[] b)
    {
        double worst = 0;
        for (int i = 0; i < a.Length; i++)
            worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        return worst;
    }
}
