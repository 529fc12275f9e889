using Managed.Kernels.Attention;
using Managed.Kernels.Matmul;
using Managed.Kernels.TensorCores;
using Xunit;

namespace Managed.Tests.Matmul;

/// <summary>The tensor-core GEMM's CUDA specializations (inline PTX: mma, ldmatrix, cp.async)
/// and its rounding kernel compile to PTX with no device present, for both block classes over
/// fp16 and bf16. They run on CUDA only; the emulated types run the same kernel body on the
/// ILGPU CPU accelerator (<see cref="MmaGemmTests"/>).</summary>
public sealed class MmaGemmKernelCompileTests
{
    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void BlockClassesCompileToMma(bool half, bool large)
    {
        var (gemm, round) = half ? MmaGemmMethods<TensorCoreHalf>.For(large)
            : MmaGemmMethods<TensorCoreBFloat16>.For(large);
        string ptx = KernelCompiler.CompilePtx(gemm);
        string type = half ? "f16" : "bf16";
        Assert.Contains($"mma.sync.aligned.m16n8k16.row.col.f32.{type}.{type}.f32", ptx);
        // Per 64-wide k tile: 4 k-steps of (m16 tiles per warp) x 4 n8 tiles, the A fragments
        // (one ldmatrix per m16 tile) and two B fragments (two n8 tiles each).
        int tilesM = large ? 4 : 2;
        Assert.Equal(4 * tilesM * 4, Count(ptx, "mma.sync"));
        // ILGPU copies the first k-step's two B loads into both sides of the branch before
        // it (whether a tile is copied ahead): 2 more in the text, never more executed.
        int loads = Count(ptx, "ldmatrix.sync.aligned.m8n8.x4.shared.b16");
        Assert.InRange(loads, 4 * (tilesM + 2), 4 * (tilesM + 2) + 2);
        Assert.Contains("cp.async.cg.shared.global", ptx);
        Assert.Contains("cp.async.wait_group 1", ptx);
        Assert.Contains("cp.async.commit_group", ptx);
        // The inline PTX addresses the kernel's only shared memory, dynamic, by its name.
        Assert.Equal(1, Count(ptx, ".shared .align"));
        Assert.Contains(".extern .shared .align 16 .b8 " + SharedMatrices.Symbol + "[];", ptx);
        // Accumulators and inline-PTX outputs in registers, not local memory.
        Assert.DoesNotContain("ld.local", ptx);
        Assert.DoesNotContain("st.local", ptx);

        string rounding = KernelCompiler.CompilePtx(round);
        Assert.Contains($"cvt.rn.{type}x2.f32", rounding);
    }

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0;
             at = text.IndexOf(what, at + 1, StringComparison.Ordinal))
            n++;
        return n;
    }
}
