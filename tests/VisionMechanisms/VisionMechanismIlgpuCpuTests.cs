using System.Reflection;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Tests.Kernels;
using Xunit;

namespace Managed.Tests.VisionMechanisms;

/// <summary>The vision mechanisms on ILGPU's CPU accelerator (the GPU kernels emulated thread
/// by thread): the host tests' checks.</summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class VisionMechanismIlgpuCpuTests(IlgpuCpuFixture fixture) : VisionMechanismTests
{
    /// <inheritdoc/>
    protected override ComputeDevice Device => fixture.Backend.Device;
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
