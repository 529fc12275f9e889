using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Tests.Kernels;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.VisionMechanisms;

/// <summary>The vision mechanisms on ILGPU's CPU accelerator (the GPU kernels emulated thread
/// by thread): the host tests' checks.</summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class VisionMechanismIlgpuCpuTests(IlgpuCpuFixture fixture) : VisionMechanismTests
{
    /// <inheritdoc/>
    protected override ComputeDevice Device => fixture.Backend.Device;

    private Accelerator Accelerator => Device.Accelerator!;

    /// <summary>MALA's view overload, with a caller's scratch and without, equals the span
    /// overload; the host rejects views.</summary>
    [Fact]
    public void MalaViewsEqualSpans()
    {
        var s = new LinearAttentionShape(1, 4, 2, 37, 5, 3);
        float[] q = Positive(100, s.QueryLength), k = Positive(101, s.KeyLength),
            v = Uniform(102, s.ValueLength);
        var spans = new float[s.OutputLength];
        MalaAttention.Forward(Device, s, q, k, v, spans);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var scratch = Accelerator.Allocate1D<float>(MalaAttention.ScratchLength(s));
        foreach (var sc in new[] { scratch.View, default })
        {
            dout.MemSetToZero();
            MalaAttention.Forward(Device, s, dq.View, dk.View, dv.View, dout.View, sc);
            AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-5, "MALA views vs spans");
        }
        Assert.Throws<ArgumentException>("scratch", () => MalaAttention.Forward(Device, s,
            dq.View, dk.View, dv.View, dout.View, scratch.View.SubView(1, scratch.Length - 1)));
        Assert.Throws<ArgumentException>("device", () => MalaAttention.Forward(
            ComputeDevice.Host, s, dq.View, dk.View, dv.View, dout.View, default));
    }

    /// <summary>RALA's view overload, with and without a gate and a caller's scratch, equals
    /// the span overload.</summary>
    [Fact]
    public void RalaViewsEqualSpans()
    {
        var s = new LinearAttentionShape(2, 2, 1, 29, 4, 3);
        float[] q = Positive(110, s.QueryLength), k = Positive(111, s.KeyLength),
            v = Uniform(112, s.ValueLength), g = Uniform(113, s.OutputLength);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dg = Accelerator.Allocate1D(g);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var scratch = Accelerator.Allocate1D<float>(RalaAttention.ScratchLength(s));
        foreach (bool gated in new[] { true, false })
        foreach (var sc in new[] { scratch.View, default })
        {
            var spans = new float[s.OutputLength];
            RalaAttention.Forward(Device, s, q, k, v, gated ? g : [], spans, 0.8f);
            dout.MemSetToZero();
            RalaAttention.Forward(Device, s, dq.View, dk.View, dv.View,
                gated ? dg.View : default, dout.View, sc, 0.8f);
            AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-5, "RALA views vs spans");
        }
        Assert.Throws<ArgumentException>("gate", () => RalaAttention.Forward(Device, s,
            dq.View, dk.View, dv.View, dg.View.SubView(1, dg.Length - 1), dout.View, default));
        Assert.Throws<ArgumentException>("output", () => RalaAttention.Forward(Device, s,
            dq.View, dk.View, dv.View, dg.View, dg.View, default));
    }

    /// <summary>L2ViT's global view overload, with a caller's scratch and without, equals the
    /// span overload.</summary>
    [Fact]
    public void L2VitGlobalViewsEqualSpans()
    {
        var s = new LinearAttentionShape(1, 4, 2, 33, 5, 3);
        float[] q = Array.ConvertAll(Uniform(130, s.QueryLength, 3f), x => MathF.Max(x, 0f)),
            k = Array.ConvertAll(Uniform(131, s.KeyLength, 3f), x => MathF.Max(x, 0f)),
            v = Uniform(132, s.ValueLength), tau = Uniform(133, 4);
        var spans = new float[s.OutputLength];
        L2VitAttention.Global(Device, s, q, k, v, tau, spans, 2f);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dt = Accelerator.Allocate1D(tau);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var scratch = Accelerator.Allocate1D<float>(2 * 5);
        foreach (var sc in new[] { scratch.View, default })
        {
            dout.MemSetToZero();
            L2VitAttention.Global(Device, s, dq.View, dk.View, dv.View, dt.View, dout.View, sc,
                2f);
            AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-5, "L2ViT global views vs spans");
        }
        Assert.Throws<ArgumentException>("temperature", () => L2VitAttention.Global(Device, s,
            dq.View, dk.View, dv.View, dt.View.SubView(0, 3), dout.View, default));
        Assert.Throws<ArgumentException>("scratch", () => L2VitAttention.Global(Device, s,
            dq.View, dk.View, dv.View, dt.View, dout.View, scratch.View.SubView(0, 3)));
    }

    /// <summary>InLine's local-term view overload, with and without bias and a caller's
    /// scratch, equals the span overload.</summary>
    [Fact]
    public void InLineLocalViewsEqualSpans()
    {
        var local = new InLineLocal(4, 5, 3, 1);
        var s = new LinearAttentionShape(1, 4, 2, 21, 4, 3);
        float[] q = Uniform(120, s.QueryLength, 0.5f), k = Uniform(121, s.KeyLength, 0.5f),
            v = Uniform(122, s.ValueLength), w = Uniform(123, 2 * 3 * 9),
            bias = Uniform(124, 2 * 3);
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dw = Accelerator.Allocate1D(w);
        using var db = Accelerator.Allocate1D(bias);
        using var dout = Accelerator.Allocate1D<float>(s.OutputLength);
        using var scratch = Accelerator.Allocate1D<float>(InLineAttention.ScratchLength(s));
        foreach (bool biased in new[] { true, false })
        foreach (var sc in new[] { scratch.View, default })
        {
            var spans = new float[s.OutputLength];
            InLineAttention.Forward(Device, s, local, q, k, v, w, biased ? bias : [], spans);
            dout.MemSetToZero();
            InLineAttention.Forward(Device, s, local, dq.View, dk.View, dv.View, dw.View,
                biased ? db.View : default, dout.View, sc);
            AssertClose(dout.GetAsArray1D(), spans, 1e-6, 1e-5, "InLine local views vs spans");
        }
        Assert.Throws<ArgumentException>("weights", () => InLineAttention.Forward(Device, s,
            local, dq.View, dk.View, dv.View, db.View, default, dout.View, default));
        Assert.Throws<ArgumentException>("local", () => InLineAttention.Forward(Device, s,
            local with { Prefix = 2 }, dq.View, dk.View, dv.View, dw.View, default, dout.View,
            default));
    }
}

/// <summary>Every element-wise step the vision mechanisms add compiles to PTX with no device.
/// </summary>
public sealed class VisionMechanismKernelCompileTests
{
    public static TheoryData<string> Steps() => new()
    {
        "mala", "multiply", "clamped-normalize", "depthwise-conv", "gelu-affine",
    };

    private static MethodInfo Kernel(string step) => step switch
    {
        "mala" => LinearMechanismKernel.Methods<MalaCombineStep>.Kernel,
        "multiply" => LinearMechanismKernel.Methods<MultiplyStep>.Kernel,
        "clamped-normalize" => LinearMechanismKernel.Methods<ClampedNormalizeStep>.Kernel,
        "depthwise-conv" => LinearMechanismKernel.Methods<DepthwiseConvStep>.Kernel,
        "gelu-affine" => LinearMechanismKernel.Methods<GeluAffineStep>.Kernel,
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

    /// <summary>The feature-map kernel closed over the papers' maps compiles to PTX; elu + 1
    /// calls ex2.</summary>
    [Fact]
    public void VisionMapsCompileToPtx()
    {
        string elu = KernelCompiler.CompilePtx(
            FeatureMapping.Methods<ScaledEluPlusOneMap>.Kernel);
        Assert.Contains(".entry", elu);
        Assert.Contains("ex2", elu);
        string identity = KernelCompiler.CompilePtx(
            FeatureMapping.Methods<ScaledIdentityMap>.Kernel);
        Assert.Contains("st.global", identity);
    }
}
