using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>
/// Compiles the ILGPU attention kernel of every <see cref="VariantRegistry"/> entry to PTX and
/// to OpenCL C with no device present (<see cref="KernelCompiler"/>), so a construct that only
/// a GPU backend rejects (a missing intrinsic, a throw, a class) fails here on any machine.
/// A compile takes 0.05-0.5 s here, so every variant runs at all three tile widths (64, 128, 256).
/// </summary>
public sealed class KernelCompilerTests
{
    /// <summary>(registry index, max head dim) for every variant and tile width.</summary>
    public static TheoryData<int, int> VariantsAndDims()
    {
        var data = new TheoryData<int, int>();
        foreach (int dim in new[] { 64, 128, 256 })
            for (int v = 0; v < VariantRegistry.All.Count; v++)
                data.Add(v, dim);
        return data;
    }

    /// <summary>Registry indices, for the checks run at one width only.</summary>
    public static TheoryData<int> Variants() => new(Enumerable.Range(0, VariantRegistry.All.Count));

    /// <summary>The CUDA path: warp-shuffle row reductions.</summary>
    [Theory]
    [MemberData(nameof(VariantsAndDims))]
    public void PtxCompiles(int variant, int maxDim)
    {
        var ptx = Compile(variant, new Ptx(maxDim, Shuffle: true));
        Assert.Contains(".entry", ptx);
    }

    /// <summary>Q, K and V stored as Half (strided rows) or BFloat16 (dense rows), widened in
    /// the loads: every variant, the register-tiled (128) and general (256) kernels.</summary>
    [Theory]
    [MemberData(nameof(VariantsAndStorage))]
    public void PtxCompilesWithHalfPrecisionStorage(int variant, int maxDim, bool bfloat16)
    {
        var ptx = Compile(variant, new Ptx(maxDim, Shuffle: true, bfloat16 ? 2 : 1));
        Assert.Contains(".entry", ptx);
    }

    /// <summary>(registry index, max head dim, bfloat16 or half).</summary>
    public static TheoryData<int, int, bool> VariantsAndStorage()
    {
        var data = new TheoryData<int, int, bool>();
        foreach (int dim in new[] { 128, 256 })
            foreach (bool bf16 in new[] { false, true })
                for (int v = 0; v < VariantRegistry.All.Count; v++)
                    data.Add(v, dim, bf16);
        return data;
    }

    /// <summary>The shared-memory reduction also compiles to PTX (width 64 only: the reduction
    /// does not depend on the tile width).</summary>
    [Theory]
    [MemberData(nameof(Variants))]
    public void PtxCompilesWithSharedMemoryReduction(int variant)
    {
        var ptx = Compile(variant, new Ptx(64, Shuffle: false));
        Assert.Contains(".entry", ptx);
    }

    /// <summary>
    /// OpenCL 2.0 without sub-groups: the shared-memory reduction. ILGPU 1.5.3 spells the
    /// entry point's qualifier <c>kernel void</c> (OpenCL C accepts <c>kernel</c> and
    /// <c>__kernel</c>), so either spelling passes.
    /// </summary>
    [Theory]
    [MemberData(nameof(VariantsAndDims))]
    public void OpenCLCompilesWithoutSubGroups(int variant, int maxDim)
    {
        var source = Compile(variant, new OpenCL(maxDim));
        Assert.Matches(@"(?m)^\s*(__)?kernel\s+void\s+\w+\(", source);
    }

    /// <summary>
    /// Documents a limitation behind a design decision: ILGPU 1.5.3's OpenCL backend maps warp
    /// shuffles only through a vendor table (CLInstructions.ShuffleOperations, keyed by
    /// (vendor, kind)), so the shuffle path cannot be compiled for a device of vendor Other
    /// even when it has sub-groups; such devices use the shared-memory reduction. If this
    /// starts compiling (a newer ILGPU), the OpenCL path could use shuffles everywhere.
    /// </summary>
    [Fact]
    public void OpenCLShufflesFailForVendorOther()
    {
        var error = Assert.ThrowsAny<Exception>(() =>
            KernelCompiler.CompileOpenCL<NoScore, NoMask, SoftmaxNormalizer>(64, subGroups: true));
        var names = new List<string>();
        for (Exception? e = error; e is not null; e = e.InnerException) names.Add(e.GetType().Name);
        Assert.True(names.Any(n => n is "InternalCompilerException" or "InvalidCodeGenerationException"),
            $"unexpected exception chain: {string.Join(" <- ", names)}: {error.Message}");
    }

    private static string Compile(int variant, ICompile compile)
    {
        var visitor = new Visitor(compile);
        VariantRegistry.All[variant].DeviceTyped.Accept(visitor); // tables as device views
        Assert.False(string.IsNullOrEmpty(visitor.Result), VariantRegistry.All[variant].Name);
        return visitor.Result!;
    }

    private interface ICompile
    {
        string Run<TScore, TMask, TNorm>()
            where TScore : struct, IScoreModifier
            where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer;
    }

    /// <summary>Storage 0: float, 1: Half, 2: BFloat16.</summary>
    private sealed record Ptx(int MaxDim, bool Shuffle, int Storage = 0) : ICompile
    {
        public string Run<TScore, TMask, TNorm>()
            where TScore : struct, IScoreModifier
            where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer => Storage switch
            {
                1 => KernelCompiler.CompilePtx<Float16Element, System.Half, TScore, TMask, TNorm>(
                    MaxDim, Shuffle, strided: true),
                2 => KernelCompiler.CompilePtx<BFloat16Element, BFloat16, TScore, TMask, TNorm>(
                    MaxDim, Shuffle),
                _ => KernelCompiler.CompilePtx<TScore, TMask, TNorm>(MaxDim, Shuffle),
            };
    }

    private sealed record OpenCL(int MaxDim) : ICompile
    {
        public string Run<TScore, TMask, TNorm>()
            where TScore : struct, IScoreModifier
            where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer =>
            KernelCompiler.CompileOpenCL<TScore, TMask, TNorm>(MaxDim, subGroups: false);
    }

    /// <summary>Gets a variant's closed types from the registry and compiles them.</summary>
    private sealed class Visitor(ICompile compile) : IVariantVisitor
    {
        public string? Result { get; private set; }

        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier
            where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer =>
            Result = compile.Run<TScore, TMask, TNorm>();
    }
}
