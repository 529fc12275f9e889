using ILGPU.Runtime.Cuda;

namespace Managed.Kernels.TensorCores;

/// <summary>
/// ldmatrix and cp.async through inline PTX, for the CUDA tensor-core types. ILGPU 1.5.3 gives
/// inline PTX no address of a view (LoadEffectiveAddressAsPtr, Unsafe.AsPointer and pointer
/// casts are rejected in kernels), so shared memory is addressed from the symbol ILGPU gives a
/// kernel's dynamic shared memory, <see cref="Symbol"/>, plus 16 bytes per chunk: a kernel
/// calling these must take its shared memory as one dynamic allocation (the PTX compile tests
/// check the declaration), and global memory from a device address the host passes
/// (<c>ArrayView.LoadEffectiveAddressAsPtr</c> on the host). A wrong symbol fails in ptxas,
/// never silently.
/// </summary>
internal static class SharedMatrices
{
    /// <summary>The PTX name of a kernel's dynamic shared memory (ILGPU names every dynamic
    /// allocation so; the kernels calling these have no static one).</summary>
    public const string Symbol = "__dyn_shared_alloca";

    /// <summary>ldmatrix.sync.aligned.m8n8.x4.shared.b16 from chunk <paramref name="chunk"/>.
    /// </summary>
    public static FragmentA Load(int chunk)
    {
        Ref<uint> r0 = 0u, r1 = 0u, r2 = 0u, r3 = 0u;
        Input<int> at = chunk;
        CudaAsm.EmitRef("{ .reg .u32 a; mov.u32 a, " + Symbol + "; mad.lo.u32 a, %4, 16, a; "
            + "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [a]; }",
            ref r0, ref r1, ref r2, ref r3, ref at);
        return new FragmentA { A0 = r0.Value, A1 = r1.Value, A2 = r2.Value, A3 = r3.Value };
    }

    /// <summary>ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 from chunk
    /// <paramref name="chunk"/>.</summary>
    public static FragmentA LoadTransposed(int chunk)
    {
        Ref<uint> r0 = 0u, r1 = 0u, r2 = 0u, r3 = 0u;
        Input<int> at = chunk;
        CudaAsm.EmitRef("{ .reg .u32 a; mov.u32 a, " + Symbol + "; mad.lo.u32 a, %4, 16, a; "
            + "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [a]; }",
            ref r0, ref r1, ref r2, ref r3, ref at);
        return new FragmentA { A0 = r0.Value, A1 = r1.Value, A2 = r2.Value, A3 = r3.Value };
    }

    /// <summary>cp.async.cg.shared.global of 16 bytes from device address
    /// <paramref name="source"/> to chunk <paramref name="chunk"/>; a source size of 0 where
    /// !<paramref name="inRange"/> fills zeros and reads nothing.</summary>
    public static void CopyAsync(int chunk, long source, bool inRange) =>
        CudaAsm.Emit("{ .reg .u32 d; .reg .u64 s; mov.u32 d, " + Symbol + "; "
            + "mad.lo.u32 d, %0, 16, d; cvta.to.global.u64 s, %1; "
            + "cp.async.cg.shared.global [d], [s], 16, %2; }", chunk, source, inRange ? 16 : 0);

    /// <summary>ex2.approx.ftz.f32: 2^x, results below 2^-126 flushed to zero.</summary>
    public static float Exp2(float x)
    {
        CudaAsm.Emit("ex2.approx.ftz.f32 %0, %1;", out float r, x);
        return r;
    }
}
