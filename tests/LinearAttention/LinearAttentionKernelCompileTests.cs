using System.Reflection;
using Managed.Kernels.Attention;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.LinearAttention;

/// <summary>The chunked linear-attention kernel and the feature-map kernel, closed over each
/// map (the table maps over device tables), compile to PTX with no device present.</summary>
public sealed class LinearAttentionKernelCompileTests
{
    /// <summary>The chunked kernels (Lightning Attention-2's three launches: chunk states,
    /// the scan over chunks, the outputs) each compile to one entry point; the two that
    /// stage 64 x 16 operand blocks in shared memory synchronize their group.</summary>
    [Fact]
    public void ChunkedKernelsCompileToPtx()
    {
        string states = KernelCompiler.CompilePtx(ChunkedLinearAttention.ChunkStatesMethod);
        string scan = KernelCompiler.CompilePtx(ChunkedLinearAttention.ScanStatesMethod);
        string outputs = KernelCompiler.CompilePtx(ChunkedLinearAttention.ChunkOutputsMethod);
        foreach (var ptx in new[] { states, scan, outputs })
            Assert.Contains(".entry", ptx);
        foreach (var ptx in new[] { states, outputs })
        {
            Assert.Contains("bar.sync", ptx);
            Assert.Contains(".shared", ptx);
        }
    }

    public static TheoryData<string> Maps() =>
        new() { "elu+1", "relu", "taylor", "cosformer", "hedgehog", "random" };

    private static MethodInfo Kernel(string map) => map switch
    {
        "elu+1" => FeatureMapping.Methods<EluPlusOneMap>.Kernel,
        "relu" => FeatureMapping.Methods<ReluMap>.Kernel,
        "taylor" => FeatureMapping.Methods<TaylorExpMap>.Kernel,
        "cosformer" => FeatureMapping.Methods<CosFormerMap>.Kernel,
        "hedgehog" => FeatureMapping.Methods<HedgehogMap<DeviceTable<float>>>.Kernel,
        "random" => FeatureMapping.Methods<RandomFeatureMap<DeviceTable<float>>>.Kernel,
        _ => throw new ArgumentException(map),
    };

    /// <summary>The feature-map kernel of each map; the exponential maps call ex2.</summary>
    [Theory]
    [MemberData(nameof(Maps))]
    public void FeatureKernelCompilesToPtx(string map)
    {
        string ptx = KernelCompiler.CompilePtx(Kernel(map));
        Assert.Contains(".entry", ptx);
        Assert.Contains("st.global", ptx);
        if (map is "elu+1" or "hedgehog" or "random") Assert.Contains("ex2", ptx);
    }
}
