using Managed.Kernels.Attention;
using Managed.Kernels.Decode;
using Managed.Kernels.Layouts;
using Managed.Kernels.Registry;
using Managed.Kernels.TensorCores;
using Managed.Kernels.Variants;
using Xunit;
using Half = System.Half;

namespace Managed.Tests.Decode;

/// <summary>The tensor-core decode kernel compiles to PTX with no device present: each (head
/// dim, value dim) class over fp16 and bf16, and the registry's variants. It runs on CUDA only
/// (inline PTX); `check --device cuda` runs it against the fp64 reference on the GPU machine.
/// </summary>
public sealed class MmaDecodeKernelCompileTests
{
    [Theory]
    [InlineData(64, 64, false)]
    [InlineData(64, 128, false)]
    [InlineData(128, 64, false)]
    [InlineData(128, 128, false)]
    [InlineData(64, 64, true)]
    [InlineData(64, 128, true)]
    [InlineData(128, 64, true)]
    [InlineData(128, 128, true)]
    public void ShapeClassesCompileToMma(int headDim, int valueDim, bool keyRows)
    {
        var half = KernelCompiler.CompilePtx(MmaDecodeMethods<Float16Element, Half,
            TensorCoreHalf, NoScore, CausalMask, SoftmaxNormalizer>.Decode(headDim, valueDim,
            keyRows));
        var bf16 = KernelCompiler.CompilePtx(MmaDecodeMethods<BFloat16Element, BFloat16,
            TensorCoreBFloat16, NoScore, CausalMask, SoftmaxNormalizer>.Decode(headDim, valueDim,
            keyRows));
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", half);
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", bf16);
        foreach (var ptx in new[] { half, bf16 })
        {
            Assert.Contains("ld.global.v4", ptx);
            Assert.Contains("prmt.b32", ptx);
            // Inline-PTX outputs in registers, not local memory (PtxLocalPromotion).
            Assert.DoesNotContain("ld.local", ptx);
            Assert.DoesNotContain("st.local", ptx);
        }
        if (keyRows)
        {
            // Per 16-key tile: (head dim / 16) k-steps x parts of the query, (value dim / 16)
            // m-tiles x 2 parts of P, whose halves are transposed by movmatrix.
            Assert.Equal(headDim / 16 * 2 + valueDim / 16 * 2, Count(half, "mma.sync"));
            Assert.Equal(headDim / 16 * 3 + valueDim / 16 * 2, Count(bf16, "mma.sync"));
            Assert.Equal(4, Count(half, "movmatrix.sync.aligned.m8n8.trans.b16"));
            Assert.Equal(4, Count(bf16, "movmatrix.sync.aligned.m8n8.trans.b16"));
        }
        else
        {
            // Per 16-key tile: (head dim / 16) k-steps x 2 n-tiles x parts of the query, and
            // (value dim / 8) n-tiles x 2 parts of P.
            Assert.Equal(headDim / 16 * 2 * 2 + valueDim / 8 * 2, Count(half, "mma.sync"));
            Assert.Equal(headDim / 16 * 2 * 3 + valueDim / 8 * 2, Count(bf16, "mma.sync"));
        }
    }

    [Fact]
    public void OtherDimsAreRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => MmaDecodeMethods<Float16Element, Half,
            TensorCoreHalf, NoScore, CausalMask, SoftmaxNormalizer>.Decode(96, 96, keyRows: true));

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0;
             at = text.IndexOf(what, at + 1, StringComparison.Ordinal))
            n++;
        return n;
    }
}
