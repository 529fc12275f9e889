using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Tests.Kernels;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.Mechanisms;

/// <summary>
/// Agent attention, induced set attention and the prefix-scan kernel on ILGPU's CPU
/// accelerator (the GPU kernels emulated thread by thread, 128 threads per group): the host
/// tests' checks on the device, the view overloads (with and without a caller's scratch, a
/// state advanced in place), the scan's device limit. Tiny shapes (N &lt;= 40 but one, d &lt;= 16,
/// B H &lt;= 4): each launch costs a fraction of a second here.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class MechanismsIlgpuCpuTests(IlgpuCpuFixture fixture)
{
    private ComputeDevice Device => fixture.Backend.Device;
    private Accelerator Accelerator => Device.Accelerator!;

    // ---------------------------------------------------------------- agent attention

    [Fact]
    public void AgentAttentionMatchesTwoStageReference()
    {
        AgentAttentionTests.AssertMatchesTwoStageReference(Device, new(1, 2, 1, 9, 13, 3, 8, 8),
            null, 400);
        AgentAttentionTests.AssertMatchesTwoStageReference(Device, new(2, 2, 2, 5, 7, 2, 4, 6),
            1.3f, 401);
    }

    [Fact]
    public void AgentAttentionOutputsAreConvexCombinations() =>
        AgentAttentionTests.AssertConvexCombination(Device, new(1, 2, 2, 10, 12, 3, 8, 4), 402);

    /// <summary>The view overload, with a caller's V_A (checked against stage 1 in double)
    /// and without one (allocated and freed by the call), equals the span overload.</summary>
    [Fact]
    public void AgentAttentionViewsEqualSpans()
    {
        var s = new AgentAttentionShape(1, 2, 1, 7, 11, 3, 8, 5);
        var (q, k, v, a) = AgentAttentionTests.Inputs(s, 403);
        var spans = new float[s.OutputLength];
        AgentAttention.Forward(Device, s, q, k, v, a, spans);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var da = Accelerator.Allocate1D(a);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var dva = Accelerator.Allocate1D<float>(s.AgentValueLength);
        AgentAttention.Forward(Device, s, dq.View, dk.View, dv.View, da.View, dout.View,
            dva.View);
        Device.Synchronize();
        AssertClose(dout.GetAsArray1D(), spans, 0, 0, "views with V_A");
        var agentValues = Attention(s.Batch, s.Heads, s.KvHeads, s.Agents, s.SeqK, s.HeadDim,
            s.ValueDim, ToDouble(a), ToDouble(k), ToDouble(v), 1.0 / Math.Sqrt(s.HeadDim));
        AssertClose(dva.GetAsArray1D(), agentValues, 1e-5, 1e-4, "V_A");
        dout.MemSetToZero();
        AgentAttention.Forward(Device, s, dq.View, dk.View, dv.View, da.View, dout.View,
            ArrayView<float>.Empty);
        AssertClose(dout.GetAsArray1D(), spans, 0, 0, "views without V_A");
    }

    // ---------------------------------------------------------------- induced set attention

    [Fact]
    public void InducedSetAttentionMatchesComposedReference()
    {
        InducedSetAttentionTests.AssertMatchesReference(Device, new(1, 2, 1, 10, 14, 3, 8),
            null, 410);
        InducedSetAttentionTests.AssertMatchesReference(Device, new(2, 2, 2, 6, 9, 1, 4),
            0.9f, 411);
    }

    [Fact]
    public void InducedSetAttentionIsPermutationEquivariant() =>
        InducedSetAttentionTests.AssertPermutationEquivariant(Device, new(1, 2, 2, 8, 12, 3, 8),
            412);

    [Fact]
    public void InducedSetAttentionViewsEqualSpans()
    {
        var s = new InducedSetAttentionShape(1, 2, 1, 6, 10, 3, 8);
        var (q, k, v, inducing) = InducedSetAttentionTests.Inputs(s, 413);
        var spans = new float[s.OutputLength];
        InducedSetAttention.Forward(Device, s, q, k, v, inducing, spans);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var di = Accelerator.Allocate1D(inducing);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var dh = Accelerator.Allocate1D<float>(s.InducingLength);
        InducedSetAttention.Forward(Device, s, dq.View, dk.View, dv.View, di.View, dout.View,
            dh.View);
        Device.Synchronize();
        AssertClose(dout.GetAsArray1D(), spans, 0, 0, "views with H");
        dout.MemSetToZero();
        InducedSetAttention.Forward(Device, s, dq.View, dk.View, dv.View, di.View, dout.View,
            ArrayView<float>.Empty);
        AssertClose(dout.GetAsArray1D(), spans, 0, 0, "views without H");
    }

    // ---------------------------------------------------------------- prefix scan

    /// <summary>Two slices of value columns (dv 20); GQA over two sequences; one head of 300
    /// keys, so each of the 128 threads scans a segment of 3 (the only case above N = 40: one
    /// launch of one group, as cheap as the others); one key.</summary>
    [Theory]
    [InlineData(1, 2, 1, 40, 8, 20)]
    [InlineData(2, 2, 2, 37, 4, 5)]
    [InlineData(1, 1, 1, 300, 4, 3)]
    [InlineData(1, 2, 1, 1, 16, 2)]
    public void PrefixScanMatchesCausalAttention(int batch, int heads, int kvHeads, int n,
        int d, int dv) =>
        PrefixScanAttentionTests.AssertMatchesCausalReference(Device,
            new(batch, heads, kvHeads, n, d, dv), new() { Scale = 0.9f }, 420 + n);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PrefixScanInPartsEqualsOneScan(bool inPlace) =>
        PrefixScanAttentionTests.AssertPartsEqualWhole(Device, new(1, 2, 1, 31, 4, 6), 430,
            default, inPlace);

    /// <summary>The view overload advancing one state in place over two parts equals the span
    /// overload over the whole, and the device equals the host.</summary>
    [Fact]
    public void PrefixScanViewsEqualSpans()
    {
        var s = new PrefixScanShape(1, 2, 2, 24, 8, 17);
        var (q, k, v) = PrefixScanAttentionTests.Inputs(s, 440, 3f);
        var spans = PrefixScanAttentionTests.Run(Device, s, q, k, v, default);
        var host = PrefixScanAttentionTests.Run(ComputeDevice.Host, s, q, k, v, default);
        AssertClose(spans.Output, host.Output, 1e-6, 1e-5, "device vs host");
        AssertClose(spans.State, host.State, 1e-6, 1e-5, "device vs host state");

        int n1 = 10, n2 = s.Length - n1, items = s.Batch * s.KvHeads;
        var empty = new float[s.StateLength];
        PrefixScanAttention.InitializeState(empty, s.ValueDim);
        using var dq = Accelerator.Allocate1D(q);
        using var dstate = Accelerator.Allocate1D(empty);
        var outputs = new List<float[]>();
        foreach (var (from, count) in new[] { (0, n1), (n1, n2) })
        {
            var part = s with { Length = count };
            using var dk = Accelerator.Allocate1D(Rows(k, items, s.Length, s.HeadDim, from, count));
            using var dv = Accelerator.Allocate1D(Rows(v, items, s.Length, s.ValueDim, from,
                count));
            using var dout = Accelerator.Allocate1D<float>(part.OutputLength);
            PrefixScanAttention.Forward(Device, part, dq.View, dk.View, dv.View, dout.View,
                dstate.View, dstate.View);
            Device.Synchronize();
            outputs.Add(dout.GetAsArray1D());
        }
        int heads = s.Batch * s.Heads;
        AssertClose(outputs[0], Rows(spans.Output, heads, s.Length, s.ValueDim, 0, n1), 1e-6,
            1e-5, "first part");
        AssertClose(outputs[1], Rows(spans.Output, heads, s.Length, s.ValueDim, n1, n2), 1e-6,
            1e-5, "second part");
        AssertClose(dstate.GetAsArray1D(), spans.State, 1e-6, 1e-5, "state");
    }

    /// <summary>A head dim over the kernel's shared query throws before any launch, naming
    /// the shape; the host takes it.</summary>
    [Fact]
    public void PrefixScanRejectsHeadDimOverDeviceLimit()
    {
        var s = new PrefixScanShape(1, 1, 1, 2, PrefixScanAttention.DeviceMaxHeadDim + 1, 2);
        var (q, k, v) = PrefixScanAttentionTests.Inputs(s, 450, 1f);
        var output = new float[s.OutputLength];
        MechanismValidationTests.AssertBad("shape", "at most 256", output,
            () => PrefixScanAttention.Forward(Device, s, q, k, v, output));
        PrefixScanAttention.Forward(ComputeDevice.Host, s, q, k, v, output);
        Assert.All(output, x => Assert.True(float.IsFinite(x)));
    }

    /// <summary>The two-stage mechanisms check the device's head-dim limit up front too.
    /// </summary>
    [Fact]
    public void TwoStageMechanismsRejectHeadDimOverDeviceLimit()
    {
        int d = FlashAttention.MaxIlgpuHeadDim + 1;
        var agent = new AgentAttentionShape(1, 1, 1, 1, 1, 1, d, 1);
        var output = new float[agent.OutputLength];
        MechanismValidationTests.AssertBad("shape", "ILGPU", output,
            () => AgentAttention.Forward(Device, agent, new float[agent.QueryLength],
                new float[agent.KeyLength], new float[agent.ValueLength],
                new float[agent.AgentLength], output));
        var isab = new InducedSetAttentionShape(1, 1, 1, 1, 1, 1, d);
        output = new float[isab.OutputLength];
        MechanismValidationTests.AssertBad("shape", "ILGPU", output,
            () => InducedSetAttention.Forward(Device, isab, new float[isab.QueryLength],
                new float[isab.KeyLength], new float[isab.KeyLength],
                new float[isab.InducingLength], output));
    }
}
