using Managed.Kernels.Attention;
using Managed.Kernels.Layouts;
using Managed.Kernels.TensorCores;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>The TF32 prefill kernel's CUDA specializations (inline PTX: mma .tf32, cvt.rna,
/// ldmatrix, cp.async on the dynamic shared allocation) compile to PTX with no device present,
/// for (head dim, value dim) classes of 64, 80, 96 and 128, groups of 4 and 8 warps, 1 and 2
/// stages. They run on CUDA only; the emulated
/// type runs the same kernel body on the ILGPU CPU accelerator (<see cref="MmaTf32PrefillTests"/>).
/// </summary>
public sealed class MmaTf32PrefillKernelCompileTests
{
    [Theory]
    [InlineData(64, 64, 4, 2)]
    [InlineData(128, 128, 8, 2)]
    [InlineData(64, 128, 8, 1)]
    [InlineData(128, 64, 4, 2)]
    [InlineData(80, 80, 4, 1)]
    [InlineData(96, 96, 8, 2)]
    public void ShapeClassesCompileToTf32Mma(int headDim, int valueDim, int warps, int stages)
    {
        var ptx = KernelCompiler.CompilePtx(MmaTf32PrefillMethods<TensorCoreTf32, SoftcapScore,
            SlidingWindowMask, SoftmaxNormalizer, KeyRangeSchedule>.For(headDim, valueDim,
            warps, stages));
        // Per 64-key tile: S in (head dim / 8) k-steps x 8 n-tiles, P V in 8 k-steps x
        // (value dim / 8) n-tiles.
        Assert.Equal(headDim / 8 * 8 + 8 * (valueDim / 8),
            Count(ptx, "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32"));
        Assert.Equal(Count(ptx, "mma.sync"), Count(ptx, "m16n8k8.row.col.f32.tf32.tf32.f32"));
        // K per tile (head dim / 8 k-steps x 4 pairs of n-tiles); no other ldmatrix.
        Assert.Equal(headDim / 8 * 4, Count(ptx, "ldmatrix.sync.aligned.m8n8.x4.shared.b16"));
        Assert.Equal(0, Count(ptx, ".trans"));
        // Q (head dim / 2 per lane), P (32 per tile), K and V (4 per chunk, in place).
        Assert.Contains("cvt.rna.tf32.f32", ptx);
        Assert.Contains("cp.async.cg.shared.global", ptx);
        Assert.Contains("cp.async.wait_group 1", ptx);
        // The inline PTX addresses the kernel's only shared allocation, the dynamic one.
        Assert.Equal(1, Count(ptx, ".shared .align"));
        Assert.Contains(".extern .shared .align 16 .b8 " + SharedMatrices.Symbol, ptx);
        // Registers, not local memory (PtxLocalPromotion).
        Assert.DoesNotContain("ld.local", ptx);
        Assert.DoesNotContain("st.local", ptx);
    }

    [Theory]
    [InlineData(256, 256, 4, 1)]
    [InlineData(64, 64, 2, 1)]
    [InlineData(64, 64, 4, 3)]
    public void OtherClassesAreRefused(int headDim, int valueDim, int warps, int stages) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => MmaTf32PrefillMethods<TensorCoreTf32,
            NoScore, CausalMask, SoftmaxNormalizer, KeyRangeSchedule>.For(headDim, valueDim,
            warps, stages));

    /// <summary>Schedules and tile skipping mean the same on the TF32 kernel and the fp32
    /// kernels: both use 64-key tiles.</summary>
    [Fact]
    public void KeyTilesAreTheFp32Kernels() =>
        Assert.Equal(RegisterTiledKernel.BlockK, MmaTf32PrefillKernel.BlockK);

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0;
             at = text.IndexOf(what, at + 1, StringComparison.Ordinal))
            n++;
        return n;
    }
}
