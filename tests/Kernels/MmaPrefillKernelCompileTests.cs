using Managed.Kernels.Attention;
using Managed.Kernels.Layouts;
using Managed.Kernels.TensorCores;
using Managed.Kernels.Variants;
using Xunit;
using Half = System.Half;

namespace Managed.Tests.Kernels;

/// <summary>The tensor-core prefill kernel's CUDA specializations (inline PTX: mma, ldmatrix,
/// cp.async) compile to PTX with no device present, for (head dim, value dim) classes of 64, 80, 96
/// and 128 over fp16 and bf16. They run on CUDA only; the emulated types run the same kernel body
/// on the ILGPU CPU accelerator (<see cref="MmaPrefillTests"/>).</summary>
public sealed class MmaPrefillKernelCompileTests
{
    [Theory]
    [InlineData(64, 64)]
    [InlineData(128, 128)]
    [InlineData(64, 128)]
    [InlineData(128, 64)]
    [InlineData(80, 80)]
    [InlineData(96, 96)]
    [InlineData(64, 64, 8)]
    [InlineData(128, 128, 8)]
    [InlineData(256, 256)]
    [InlineData(256, 128)]
    public void ShapeClassesCompileToMma(int headDim, int valueDim, int warps = 4)
    {
        var half = KernelCompiler.CompilePtx(MmaPrefillMethods<Half, TensorCoreHalf, NoScore,
            CausalMask, SoftmaxNormalizer, KeyRangeSchedule>.For(headDim, valueDim, warps));
        var bf16 = KernelCompiler.CompilePtx(MmaPrefillMethods<BFloat16, TensorCoreBFloat16,
            SoftcapScore, SlidingWindowMask, SoftmaxNormalizer, KeyRangeSchedule>.For(headDim,
            valueDim, warps));
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", half);
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", bf16);
        foreach (var ptx in new[] { half, bf16 })
        {
            // Per 64-key tile: S in (head dim / 16) k-steps x 8 n-tiles, P V in 4 k-steps x
            // (value dim / 8) n-tiles.
            Assert.Equal(headDim / 16 * 8 + 4 * (valueDim / 8), Count(ptx, "mma.sync"));
            // Q once, then per tile K (head dim / 16 x 4) and V (4 x value dim / 16).
            Assert.Equal(headDim / 16 + headDim / 16 * 4,
                Count(ptx, "ldmatrix.sync.aligned.m8n8.x4.shared.b16"));
            Assert.Equal(4 * (valueDim / 16),
                Count(ptx, "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"));
            Assert.Contains("cp.async.cg.shared.global", ptx);
            Assert.Contains("cp.async.wait_group 1", ptx);
            // The inline PTX addresses the kernel's only shared memory, dynamic, by its name
            // (16-byte aligned: ldmatrix and cp.async move 16-byte chunks).
            Assert.Equal(1, Count(ptx, ".shared .align"));
            Assert.Contains(".extern .shared .align 16 .b8 " + SharedMatrices.Symbol + "[];", ptx);
            // 2^x without the range test and rescaling of the non-.ftz ex2.
            Assert.Contains("ex2.approx.ftz.f32", ptx);
            // Inline-PTX outputs in registers, not local memory (PtxLocalPromotion).
            Assert.DoesNotContain("ld.local", ptx);
            Assert.DoesNotContain("st.local", ptx);
        }
    }

    [Fact]
    public void OtherDimsAreRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => MmaPrefillMethods<Half, TensorCoreHalf,
            NoScore, CausalMask, SoftmaxNormalizer, KeyRangeSchedule>.For(32, 32));

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0;
             at = text.IndexOf(what, at + 1, StringComparison.Ordinal))
            n++;
        return n;
    }
}
