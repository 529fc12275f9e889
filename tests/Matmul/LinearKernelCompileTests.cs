using Managed.Kernels.Attention;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;
using Xunit;
using Half = System.Half;

namespace Managed.Tests.Matmul;

/// <summary>The linear kernels (GEMV with shuffle and shared-memory reductions, tiled GEMM)
/// compile to PTX for each weight type with no device present; the GEMV's word path loads
/// 16-byte vectors and keeps its row sums in registers.</summary>
public sealed class LinearKernelCompileTests
{
    /// <summary>Weight 0: float, 1: Half, 2: BFloat16.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void KernelsCompileToPtx(int weight)
    {
        var (shuffle, shared, gemm) = weight switch
        {
            1 => Methods<Float16Element, Half>(),
            2 => Methods<BFloat16Element, BFloat16>(),
            _ => Methods<Float32Element, float>(),
        };
        string gemv = KernelCompiler.CompilePtx(shuffle);
        Assert.Contains("shfl.sync", gemv);
        // 16-byte loads of weights and x; the row sums stay in registers (Half's inline-PTX
        // conversions return through ILGPU's local slots, which ptxas folds: not checked).
        Assert.Contains("ld.global.v4.b32", gemv);
        if (weight != 1) Assert.DoesNotContain(".local", gemv);
        Assert.DoesNotContain("shfl.sync", KernelCompiler.CompilePtx(shared));
        string tiled = KernelCompiler.CompilePtx(gemm);
        Assert.Contains(".entry", tiled);
        Assert.Contains("bar.sync", tiled);
    }

    private static (System.Reflection.MethodInfo, System.Reflection.MethodInfo,
        System.Reflection.MethodInfo) Methods<TElement, TStorage>()
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged =>
        (LinearMethods<TElement, TStorage>.Gemv(true),
         LinearMethods<TElement, TStorage>.Gemv(false),
         LinearMethods<TElement, TStorage>.Gemm);
}
