using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Variants;
using Managed.Tests.Kernels;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.TaylorMechanisms;

/// <summary>
/// BASED and Fastmax on ILGPU's CPU accelerator (the GPU kernels emulated thread by thread):
/// the host tests' checks, plus the view overloads (with and without a caller's feature
/// scratch, a device state) against the span overloads and the host.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class TaylorMechanismIlgpuCpuTests(IlgpuCpuFixture fixture) : TaylorMechanismTests
{
    /// <inheritdoc/>
    protected override ComputeDevice Device => fixture.Backend.Device;

    private Accelerator Accelerator => Device.Accelerator!;

    /// <summary>BASED's linear mixer on views, with a caller's feature scratch (two calls
    /// through a device state) and without, equals the span overload; a short scratch is
    /// rejected by name.</summary>
    [Fact]
    public void BasedLinearViewsEqualSpans()
    {
        const int n = 12, d = 4, dv = 3;
        var raw = new AttentionShape(1, 2, 1, n, n, d, dv);
        var (q, k, v) = Inputs(raw, 400, 1f);
        var spans = RunBased(raw, q, k, v, null);
        var shape = Mapped(raw, BasedAttention.Features(d));
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv_ = Accelerator.Allocate1D(v);
        using var dout = Accelerator.Allocate1D<float>(raw.OutputLength);
        BasedAttention.Linear(Device, shape, d, dq.View, dk.View, dv_.View, dout.View,
            ArrayView<float>.Empty);
        AssertClose(dout.GetAsArray1D(), ToDouble(spans), 1e-6, 1e-6, "views without scratch");
        using var state = new LinearAttentionState(Device, 1, 1, shape.Features, dv);
        var stepped = new float[raw.OutputLength];
        foreach (var (from, count) in new[] { (0, 7), (7, 5) })
        {
            var part = shape with { Length = count };
            using var pq = Accelerator.Allocate1D(Rows(q, 2, n, d, from, count));
            using var pk = Accelerator.Allocate1D(Rows(k, 1, n, d, from, count));
            using var pv = Accelerator.Allocate1D(Rows(v, 1, n, dv, from, count));
            using var po = Accelerator.Allocate1D<float>(part.OutputLength);
            using var features = Accelerator.Allocate1D<float>(part.QueryLength
                + part.KeyLength);
            BasedAttention.Linear(Device, part, d, pq.View, pk.View, pv.View, po.View,
                features.View, state);
            var o = po.GetAsArray1D();
            for (int h = 0; h < 2; h++)
                Array.Copy(o, h * count * dv, stepped, (h * n + from) * dv, count * dv);
        }
        AssertClose(stepped, ToDouble(spans), 1e-5, 1e-4, "views through state vs spans");
        using var shortScratch = Accelerator.Allocate1D<float>(5);
        Assert.Throws<ArgumentException>("features", () => BasedAttention.Linear(Device, shape,
            d, dq.View, dk.View, dv_.View, dout.View, shortScratch.View));
        Assert.Throws<ArgumentException>("device", () => BasedAttention.Linear(
            ComputeDevice.Host, shape, d, dq.View, dk.View, dv_.View, dout.View,
            ArrayView<float>.Empty));
    }

    /// <summary>The window mixer on views equals the span overload and the host.</summary>
    [Fact]
    public void BasedWindowViewsEqualSpansAndHost()
    {
        var raw = new AttentionShape(2, 2, 1, 30, 30, 8, 4);
        var (q, k, v) = Inputs(raw, 410, 1f);
        var spans = new float[raw.OutputLength];
        BasedAttention.Window(Device, raw, 7, q, k, v, spans);
        var host = new float[raw.OutputLength];
        BasedAttention.Window(ComputeDevice.Host, raw, 7, q, k, v, host);
        AssertClose(spans, ToDouble(host), 1e-5, 1e-4, "device vs host");
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dout = Accelerator.Allocate1D<float>(raw.OutputLength);
        BasedAttention.Window(Device, raw, 7, dq.View, dk.View, dv.View, dout.View);
        AssertClose(dout.GetAsArray1D(), ToDouble(spans), 1e-6, 1e-6, "views vs spans");
    }

    /// <summary>Fastmax on views (with and without scratch) equals the span overload and the
    /// host; a chunk larger than the device tile is rejected by name.</summary>
    [Theory]
    [InlineData(1, true)]
    [InlineData(2, false)]
    public void CenteredPolynomialViewsEqualSpansAndHost(int order, bool causal)
    {
        var raw = new AttentionShape(1, 2, 1, 19, 19, 5, 3);
        var (q, k, v) = Inputs(raw, 420 + order, 1f);
        var spans = RunCenteredPolynomial(raw, order, q, k, v, causal, null);
        var shape = Mapped(raw, CenteredPolynomialAttention.Features(raw.HeadDim, order));
        var host = new float[raw.OutputLength];
        CenteredPolynomialAttention.Forward(ComputeDevice.Host, shape, raw.HeadDim, order, q, k, v, host,
            causal);
        AssertClose(spans, ToDouble(host), 1e-5, 1e-4, "device vs host");
        using var dq = Accelerator.Allocate1D(q);
        using var dk = Accelerator.Allocate1D(k);
        using var dv = Accelerator.Allocate1D(v);
        using var dout = Accelerator.Allocate1D<float>(raw.OutputLength);
        using var features = Accelerator.Allocate1D<float>(shape.QueryLength + shape.KeyLength);
        CenteredPolynomialAttention.Forward(Device, shape, raw.HeadDim, order, dq.View, dk.View, dv.View,
            dout.View, features.View, causal);
        AssertClose(dout.GetAsArray1D(), ToDouble(spans), 1e-6, 1e-6, "views with scratch");
        dout.MemSetToZero();
        CenteredPolynomialAttention.Forward(Device, shape, raw.HeadDim, order, dq.View, dk.View, dv.View,
            dout.View, ArrayView<float>.Empty, causal);
        AssertClose(dout.GetAsArray1D(), ToDouble(spans), 1e-6, 1e-6, "views without scratch");
        Assert.Throws<ArgumentException>("chunkSize", () => CenteredPolynomialAttention.Forward(Device,
            shape, raw.HeadDim, order, q, k, v, new float[raw.OutputLength], causal,
            chunkSize: ChunkedLinearAttention.DeviceMaxChunk + 1));
    }
}

/// <summary>The kernel specializations BASED and Fastmax add compile to PTX with no device:
/// the feature-map kernel over <see cref="CenteredPolynomialMap"/> and <see cref="TaylorExpMap"/>, and
/// exact attention with the causal sliding-window mask.</summary>
public sealed class TaylorMechanismKernelCompileTests
{
    /// <summary>The feature kernel of each map stores its features; Fastmax's normalization
    /// takes a square root.</summary>
    [Fact]
    public void FeatureKernelsCompileToPtx()
    {
        string fast = KernelCompiler.CompilePtx(FeatureMapping.Methods<CenteredPolynomialMap>.Kernel);
        string taylor = KernelCompiler.CompilePtx(FeatureMapping.Methods<TaylorExpMap>.Kernel);
        foreach (var ptx in new[] { fast, taylor })
        {
            Assert.Contains(".entry", ptx);
            Assert.Contains("st.global", ptx);
        }
        Assert.Contains("sqrt", fast);
    }

    /// <summary>The window mixer's kernel: softmax with <see cref="SlidingWindowMask"/>.</summary>
    [Fact]
    public void WindowKernelCompilesToPtx()
    {
        string ptx = KernelCompiler.CompilePtx<NoScore, SlidingWindowMask, SoftmaxNormalizer>();
        Assert.Contains(".entry", ptx);
        Assert.Contains("bar.sync", ptx);
    }
}
