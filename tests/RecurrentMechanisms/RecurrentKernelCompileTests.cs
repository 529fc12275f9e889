using Managed.Kernels.Attention;
using Managed.Kernels.Recurrent;
using Xunit;

namespace Managed.Tests.RecurrentMechanisms;

/// <summary>The recurrent mechanisms' own kernels compile to PTX with no device present (the
/// attention and Linear kernels Mega uses have their own compile tests).</summary>
public sealed class RecurrentKernelCompileTests
{
    [Fact]
    public void EmaKernelCompilesToPtx()
    {
        string ptx = KernelCompiler.CompilePtx(MultiDimensionalEma.KernelMethod);
        Assert.Contains(".entry", ptx);
        Assert.Contains(".local", ptx); // the per-thread EMA states
    }

    [Fact]
    public void TitansMemoryKernelCompilesToPtx()
    {
        string ptx = KernelCompiler.CompilePtx(TitansMemory.KernelMethod);
        Assert.Contains(".entry", ptx);
        Assert.Contains("ld.global", ptx);
    }

    [Fact]
    public void TitansMlpMemoryKernelCompilesToPtx()
    {
        string ptx = KernelCompiler.CompilePtx(TitansMlpMemory.KernelMethod);
        Assert.Contains(".entry", ptx);
        Assert.Contains("bar.sync", ptx);
        Assert.Contains("ex2", ptx);
    }
}
