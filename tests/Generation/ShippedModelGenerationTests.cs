using Managed.Kernels.Devices;
using Managed.Models;
using Managed.Models.Generation;
using Xunit;

namespace Managed.Tests.Generation;

/// <summary>The generator on the shipped model (models/kjv-llama, host): a batch of greedy
/// prompts of different lengths, through batched decode steps, equals each prompt alone.
/// </summary>
public sealed class ShippedModelGenerationTests
{
    private static string Directory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null;
             dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "models", "kjv-llama");
            if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
        }
        throw new DirectoryNotFoundException("models/kjv-llama");
    }

    [Fact]
    public void GreedyBatchOfDifferentLengthsEqualsEachPromptAlone()
    {
        int[][] prompts = [[0, 1136, 259, 2084], [0, 268], [0, 1136, 259, 2084, 12, 436, 309]];
        var options = new GenerationOptions { MaxNewTokens = 24 };
        GenerationResult[] batch;
        using (var model = TransformerModel.Load(Directory(), ComputeDevice.Host,
                   new ModelOptions { MaxBatch = 3, MaxLength = 64 }))
            batch = new Generator(model, options).Generate(prompts);
        using var single = TransformerModel.Load(Directory(), ComputeDevice.Host,
            new ModelOptions { MaxBatch = 1, MaxLength = 64 });
        var generator = new Generator(single, options);
        for (int b = 0; b < prompts.Length; b++)
            Assert.Equal(generator.Generate(prompts[b]).Tokens, batch[b].Tokens);
    }
}
