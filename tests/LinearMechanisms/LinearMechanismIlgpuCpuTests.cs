using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Variants;
using Managed.Tests.Kernels;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.LinearMechanisms;

/// <summary>
/// The mechanisms on ILGPU's CPU accelerator (the GPU kernels emulated thread by thread): the
/// host tests' checks, plus the view overloads (with and without a caller's scratch, a state
/// advanced in place) against the span overloads.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class LinearMechanismIlgpuCpuTests(IlgpuCpuFixture fixture) : LinearMechanismTests
{
    /// <inheritdoc/>
    protected override ComputeDevice Device => fixture.Backend.Device;

    private Accelerator Accelerator => Device.Accelerator!;

    /// <summary>Lightning on views, in two calls through a device state, equals one span call.
    /// </summary>
    [Fact]
    public void LightningViewsThroughStateEqualSpans()
    {
        var s = new LinearAttentionShape(1, 2, 1, 12, 4, 3);
        var (q, k, v) = Inputs(s, 100, 4, 0.5f);
        var decay = LightningAttention.Decays(1);
        var spans = new float[s.OutputLength];
        LightningAttention.Forward(Device, s, q, k, v, decay, spans);
        using var state = new LinearAttentionState(Device, 1, 1, 4, 3);
        var stepped = new float[s.OutputLength];
        foreach (var (from, count) in new[] { (0, 7), (7, 5) })
        {
            var part = s with { Length = count };
            using var dq = Accelerator.Allocate1D(Rows(q, 2, 12, 4, from, count));
            using var dk = Accelerator.Allocate1D(Rows(k, 1, 12, 4, from, count));
            using var dv = Accelerator.Allocate1D(Rows(v, 1, 12, 3, from, count));
            using var dout = Accelerator.Allocate1D<float>(part.OutputLength);
            LightningAttention.Forward(Device, part, dq.View, dk.View, dv.View, decay,
                dout.View, state);
            var o = dout.GetAsArray1D();
            for (int h = 0; h < 2; h++)
                Array.Copy(o, h * count * 3, stepped, (h * 12 + from) * 3, count * 3);
        }
        AssertClose(stepped, spans, 1e-5, 1e-4, "views through state vs spans");
    }

    /// <summary>Hedgehog's view overload, with a caller's feature scratch and without, equals
    /// the span overload.</summary>
    [Fact]
    public void HedgehogViewsEqualSpans()
    {
        const int d = 4, m = 2;
        var s = new LinearAttentionShape(1, 2, 1, 10, 2 * m, 3);
        var (q, k, v) = Inputs(s, 110, d, 1f);
        var wq = Uniform(111, s.Heads * m * (d + 1), 0.5f);
        var wk = Uniform(112, s.KvHeads * m * (d + 1), 0.5f);
        var spans = RunHedgehog(s, d, m, wq, wk, q, k, v, true);
        var tq = new VariantTable<float>(wq);
        var tk = new VariantTable<float>(wk);
        using var bq = tq.Upload(Accelerator);
        using var bk = tk.Upload(Accelerator);
        var mq = new HedgehogMap<DeviceTable<float>>(new(bq.View.SubView(0, tq.Length)), m);
        var mk = new HedgehogMap<DeviceTable<float>>(new(bk.View.SubView(0, tk.Length)), m);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var features = Accelerator.Allocate1D<float>(s.QueryLength + s.KeyLength);
        HedgehogAttention.Forward(Device, s, d, mq, mk, dq.View, dk.View, dv.View, dout.View,
            features.View, causal: true);
        AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-6, "views with scratch");
        dout.MemSetToZero();
        HedgehogAttention.Forward(Device, s, d, mq, mk, dq.View, dk.View, dv.View, dout.View,
            ArrayView<float>.Empty, causal: true);
        AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-6, "views without scratch");
        Assert.Throws<ArgumentException>("features", () => HedgehogAttention.Forward(Device,
            s, d, mq, mk, dq.View, dk.View, dv.View, dout.View,
            features.View.SubView(1, features.Length - 1), causal: true));
    }

    /// <summary>InLine's view overload equals the span overload; its scratch holds z and
    /// vbar.</summary>
    [Fact]
    public void InLineViewsEqualSpans()
    {
        var s = new LinearAttentionShape(1, 2, 1, 9, 3, 4);
        var (q, k, v) = Inputs(s, 120, 3, 0.5f);
        var spans = new float[s.OutputLength];
        InLineAttention.Forward(Device, s, q, k, v, spans);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var scratch = Accelerator.Allocate1D<float>(InLineAttention.ScratchLength(s));
        InLineAttention.Forward(Device, s, dq.View, dk.View, dv.View, dout.View, scratch.View);
        AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-6, "views with scratch");
        var zAndMean = new double[InLineAttention.ScratchLength(s)];
        for (int j = 0; j < 9; j++)
        {
            for (int x = 0; x < 3; x++) zAndMean[x] += k[j * 3 + x];
            for (int c = 0; c < 4; c++) zAndMean[3 + c] += v[j * 4 + c] / 9.0;
        }
        AssertClose(scratch.GetAsArray1D(), zAndMean, 1e-6, 1e-5, "z, vbar");
        dout.MemSetToZero();
        InLineAttention.Forward(Device, s, dq.View, dk.View, dv.View, dout.View,
            ArrayView<float>.Empty);
        AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-6, "views without scratch");
        Assert.Throws<ArgumentException>("scratch", () => InLineAttention.Forward(Device, s,
            dq.View, dk.View, dv.View, dout.View, scratch.View.SubView(1, scratch.Length - 1)));
        Assert.Throws<ArgumentException>("device", () => InLineAttention.Forward(
            ComputeDevice.Host, s, dq.View, dk.View, dv.View, dout.View, scratch.View));
    }

    /// <summary>Flow's view overload equals the span overload; the conserved flows sit at
    /// <see cref="FlowAttention.ConservedOffset"/> of its scratch.</summary>
    [Fact]
    public void FlowViewsEqualSpans()
    {
        var s = new LinearAttentionShape(1, 2, 2, 11, 4, 3);
        var (q, k, v) = Inputs(s, 130, 4, 1f);
        var spans = new float[s.OutputLength];
        var conserved = new float[2 * 2 * 11];
        FlowAttention.Forward(Device, s, q, k, v, spans, conserved);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var scratch = Accelerator.Allocate1D<float>(FlowAttention.ScratchLength(s));
        FlowAttention.Forward(Device, s, dq.View, dk.View, dv.View, dout.View, scratch.View);
        AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-6, "views with scratch");
        var flows = scratch.View.SubView(FlowAttention.ConservedOffset(s), conserved.Length)
            .GetAsArray1D();
        AssertClose(flows, conserved, 1e-6, 1e-6, "conserved flows in scratch");
        dout.MemSetToZero();
        FlowAttention.Forward(Device, s, dq.View, dk.View, dv.View, dout.View,
            ArrayView<float>.Empty);
        AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-6, "views without scratch");
        Assert.Throws<ArgumentException>("scratch", () => FlowAttention.Forward(Device, s,
            dq.View, dk.View, dv.View, dout.View, scratch.View.SubView(1, scratch.Length - 1)));
    }

    /// <summary>The same for causal Flow: its own scratch length and conserved offset.
    /// </summary>
    [Fact]
    public void CausalFlowViewsEqualSpans()
    {
        var s = new LinearAttentionShape(1, 2, 2, 11, 4, 3);
        var (q, k, v) = Inputs(s, 131, 4, 1f);
        var spans = new float[s.OutputLength];
        var conserved = new float[2 * 2 * 11];
        FlowAttention.Forward(Device, s, q, k, v, spans, conserved, causal: true);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var scratch = Accelerator.Allocate1D<float>(FlowAttention.ScratchLength(s, true));
        FlowAttention.Forward(Device, s, dq.View, dk.View, dv.View, dout.View, scratch.View,
            causal: true);
        AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-6, "views with scratch");
        var flows = scratch.View.SubView(FlowAttention.ConservedOffset(s, true), conserved.Length)
            .GetAsArray1D();
        AssertClose(flows, conserved, 1e-6, 1e-6, "conserved flows in scratch");
        Assert.Throws<ArgumentException>("scratch", () => FlowAttention.Forward(Device, s,
            dq.View, dk.View, dv.View, dout.View, scratch.View.SubView(1, scratch.Length - 1),
            causal: true));
    }
}

/// <summary>Every element-wise step of the mechanisms compiles to PTX with no device.</summary>
public sealed class LinearMechanismKernelCompileTests
{
    public static TheoryData<string> Steps() => new()
    {
        "column-sum", "row-dot", "inline", "sigmoid", "weighted-sum", "lse", "competition",
        "allocation", "ones", "count-ratio", "count-divide", "row-scale", "flow-competition",
    };

    private static MethodInfo Kernel(string step) => step switch
    {
        "column-sum" => LinearMechanismKernel.Methods<ColumnSumStep>.Kernel,
        "row-dot" => LinearMechanismKernel.Methods<RowDotStep>.Kernel,
        "inline" => LinearMechanismKernel.Methods<InLineCombineStep>.Kernel,
        "sigmoid" => LinearMechanismKernel.Methods<SigmoidStep>.Kernel,
        "weighted-sum" => LinearMechanismKernel.Methods<WeightedColumnSumStep>.Kernel,
        "lse" => LinearMechanismKernel.Methods<LogSumExpStep>.Kernel,
        "competition" => LinearMechanismKernel.Methods<CompetitionStep>.Kernel,
        "allocation" => LinearMechanismKernel.Methods<AllocationStep>.Kernel,
        "ones" => LinearMechanismKernel.Methods<OnesStep>.Kernel,
        "count-ratio" => LinearMechanismKernel.Methods<CountRatioStep>.Kernel,
        "count-divide" => LinearMechanismKernel.Methods<CountDivideStep>.Kernel,
        "row-scale" => LinearMechanismKernel.Methods<RowScaleStep>.Kernel,
        "flow-competition" => FlowCompetitionKernel.Method,
        _ => throw new ArgumentException(step),
    };

    /// <summary>The step kernel closed over <paramref name="step"/> compiles to one entry
    /// point that stores its result.</summary>
    [Theory]
    [MemberData(nameof(Steps))]
    public void StepCompilesToPtx(string step)
    {
        string ptx = KernelCompiler.CompilePtx(Kernel(step));
        Assert.Contains(".entry", ptx);
        Assert.Contains("st.global", ptx);
    }
}
