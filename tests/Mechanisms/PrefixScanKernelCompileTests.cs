using Managed.Kernels.Attention;
using Managed.Kernels.LinearAttention;
using Xunit;

namespace Managed.Tests.Mechanisms;

/// <summary>The prefix-scan kernel compiles to PTX with no device present.</summary>
public sealed class PrefixScanKernelCompileTests
{
    /// <summary>One entry point that synchronizes its group (the scan of the thread totals in
    /// shared memory) and exponentiates through ex2.</summary>
    [Fact]
    public void KernelCompilesToPtx()
    {
        string ptx = KernelCompiler.CompilePtx(PrefixScanAttention.KernelMethod);
        Assert.Contains(".entry", ptx);
        Assert.Contains("bar.sync", ptx);
        Assert.Contains(".shared", ptx);
        Assert.Contains("ex2", ptx);
    }
}
