using Managed.Kernels.Attention;
using Managed.Kernels.Decode;
using Managed.Kernels.Layouts;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Decode;

/// <summary>The decode kernels (partial and merge) of every registry variant compile to PTX
/// with no device present (float caches; every eighth variant over Half and BFloat16; the
/// smallest shape class, as the variant's code is the same in each and the largest took
/// about 15 s a compile on CI), each shape class for exact attention, and the cache's append
/// and eviction kernels.</summary>
public sealed class DecodeKernelCompileTests
{
    public static TheoryData<int, int> VariantsAndStorage()
    {
        var data = new TheoryData<int, int>();
        // Every variant over a float cache; every eighth over Half and BFloat16 (the storage
        // type changes only the loads; each decode compile takes seconds on the CI machine).
        for (int storage = 0; storage < 3; storage++)
            for (int v = 0; v < VariantRegistry.All.Count; v++)
                if (storage == 0 || v % 8 == 0) data.Add(v, storage);
        return data;
    }

    /// <summary>Storage 0: float, 1: Half, 2: BFloat16.</summary>
    [Theory]
    [MemberData(nameof(VariantsAndStorage))]
    public void DecodePtxCompiles(int variant, int storage)
    {
        var visitor = new Visitor(storage);
        VariantRegistry.All[variant].DeviceTyped.Accept(visitor);
        Assert.Contains(".entry", visitor.Partial);
        Assert.Contains(".entry", visitor.Merge);
    }

    /// <summary>Every class of shape (dims per lane, lanes per key, vectors per group), the
    /// shared-memory reduction and element loads, for exact attention over each storage type:
    /// word loads are 16-byte vector loads (8-byte at 4 dims of a 16-bit type).</summary>
    [Theory]
    [InlineData(4, 8, 1, true, true)]
    [InlineData(8, 8, 2, true, true)]
    [InlineData(16, 8, 4, true, true)]
    [InlineData(16, 16, 2, true, true)]
    [InlineData(16, 8, 4, false, true)]
    [InlineData(8, 8, 4, true, false)]
    public void DecodeShapeClassesCompile(int dims, int lanes, int vectors, bool shuffle,
        bool words)
    {
        foreach (var ptx in new[]
        {
            KernelCompiler.CompilePtx(DecodeMethods<Float32Element, float, NoScore, CausalMask,
                SoftmaxNormalizer>.Decode(dims, lanes, vectors, shuffle, words)),
            KernelCompiler.CompilePtx(DecodeMethods<BFloat16Element, BFloat16, NoScore,
                CausalMask, SoftmaxNormalizer>.Decode(dims, lanes, vectors, shuffle, words)),
        })
        {
            Assert.Contains(".entry", ptx);
            Assert.Equal(shuffle, ptx.Contains("shfl.sync"));
            Assert.Equal(words, ptx.Contains("ld.global.v4.b32")
                || ptx.Contains("ld.global.v2.b32"));
        }
    }

    [Fact]
    public void AppendPtxCompiles()
    {
        foreach (var type in new[] { typeof(float), typeof(System.Half), typeof(BFloat16) })
            Assert.Contains(".entry", KernelCompiler.CompilePtx(typeof(CacheAppendKernel)
                .GetMethod(nameof(CacheAppendKernel.Append))!.MakeGenericMethod(type)));
    }

    /// <summary>The eviction kernels (gather, scatter, position fill, key norms) compile for
    /// each storage type.</summary>
    [Fact]
    public void EvictionPtxCompiles()
    {
        var kernels = typeof(KvCacheKernels);
        Assert.Contains(".entry", KernelCompiler.CompilePtx(
            kernels.GetMethod(nameof(KvCacheKernels.FillSlots))!));
        foreach (var (element, storage) in new[] { (typeof(Float32Element), typeof(float)),
            (typeof(Float16Element), typeof(System.Half)),
            (typeof(BFloat16Element), typeof(BFloat16)) })
            foreach (var name in new[] { nameof(KvCacheKernels.Gather),
                nameof(KvCacheKernels.Scatter), nameof(KvCacheKernels.KeyNorms) })
                Assert.Contains(".entry", KernelCompiler.CompilePtx(
                    kernels.GetMethod(name)!.MakeGenericMethod(element, storage)));
    }

    private sealed class Visitor(int storage) : IVariantVisitor
    {
        public string Partial = "", Merge = "";

        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier
            where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer
        {
            (Partial, Merge) = storage switch
            {
                1 => Compile<Float16Element, System.Half, TScore, TMask, TNorm>(),
                2 => Compile<BFloat16Element, BFloat16, TScore, TMask, TNorm>(),
                _ => Compile<Float32Element, float, TScore, TMask, TNorm>(),
            };
        }

        private static (string, string) Compile<TElement, TStorage, TScore, TMask, TNorm>()
            where TElement : struct, IElement<TStorage>
            where TStorage : unmanaged
            where TScore : struct, IScoreModifier
            where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer =>
            (KernelCompiler.CompilePtx(
                DecodeMethods<TElement, TStorage, TScore, TMask, TNorm>.Decode(4, 8, 1, true, true)),
             KernelCompiler.CompilePtx(DecodeMethods<TElement, TStorage, TScore, TMask, TNorm>.Merge));
    }
}
