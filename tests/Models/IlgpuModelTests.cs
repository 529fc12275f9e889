using Managed.Tests.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace Managed.Tests.Models;

/// <summary>The parity checks on ILGPU's CPU accelerator (the device kernels emulated thread
/// by thread: slow on 2 cores, so one fixture per family and weight type, and the greedy and
/// cache checks on a few).</summary>
public sealed class IlgpuModelTests(IlgpuCpuFixture fixture, ITestOutputHelper output)
    : IClassFixture<IlgpuCpuFixture>
{
    [Theory]
    [InlineData("llama-gqa")]
    [InlineData("llama-dynamic-bf16")]
    [InlineData("llama-yarn")]
    [InlineData("mistral-window-bf16")]
    [InlineData("qwen2-bias")]
    [InlineData("gpt2")]
    [InlineData("gpt2-bf16")]
    public void Logits_match_hugging_face(string name) =>
        ParityChecks.Logits(HfFixture.Load(name), fixture.Backend.Device, output);

    // Decode kernels compile once per mask type (tens of seconds emulated): these two share
    // the plain causal one; windowed prefill is covered by mistral-window-bf16 above.
    [Theory]
    [InlineData("llama-dynamic")]
    public void Greedy_continuation_matches_hugging_face(string name) =>
        ParityChecks.Greedy(HfFixture.Load(name), fixture.Backend.Device);

    [Theory]
    [InlineData("llama-gqa")]
    public void Decoding_with_the_cache_equals_a_full_forward(string name) =>
        ParityChecks.CachedEqualsFull(HfFixture.Load(name), fixture.Backend.Device, output);
}
