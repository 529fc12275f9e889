using ILGPU;
using ILGPU.Runtime.Cuda;
using Managed.Kernels.Decode;

namespace Managed.Kernels.TensorCores;

/// <summary>
/// TF32 on the tensor cores as an operator type argument (<see cref="Attention.MmaTf32PrefillKernel"/>):
/// rounding fp32 to tf32, mma.sync.m16n8k8 (tf32 operands, fp32 accumulation), ldmatrix of
/// 32-bit words and cp.async. A tf32 value is an fp32 bit pattern whose low 13 mantissa bits
/// are zero (10 explicit mantissa bits, fp32's exponent range): <see cref="Round"/> rounds to
/// nearest, ties away from zero (cvt.rna.tf32.f32), a relative error of at most 2^-11.
/// <see cref="TensorCoreTf32"/> is inline PTX (CUDA only); <see cref="EmulatedTf32"/> computes
/// the same in software on any ILGPU device, so the tests run the kernel on the ILGPU CPU
/// accelerator. Shared memory is the kernel's one dynamic allocation
/// (<see cref="DynamicSharedMatrices"/>).
/// </summary>
internal interface ITf32Core
{
    /// <summary>x rounded to tf32 (nearest, ties away from zero), as fp32 bits; infinities and
    /// NaN stay what they are.</summary>
    static abstract uint Round(float x);

    /// <summary>c += A (16 x 8) * B (8 x 8), one warp together (every lane must call it); lane
    /// (g, t) = (lane/4, lane%4) gives A0 = A[g][t], A1 = A[g + 8][t], A2 = A[g][t + 4],
    /// A3 = A[g + 8][t + 4], b0 = B[t][g], b1 = B[t + 4][g] (tf32 bits) and holds c as
    /// <see cref="Accumulator"/> does.</summary>
    static abstract void MultiplyAdd(ref Accumulator c, FragmentA a, uint b0, uint b1);

    /// <summary>ldmatrix.x4 of 32-bit words: lanes 8i..8i+7 give the rows of matrix i (four
    /// words each) as <paramref name="chunk"/>, a 16-byte index into <paramref name="shared"/>;
    /// lane (g, t) gets word t of row g of matrix i in register i. <paramref name="shared"/>
    /// must be the kernel's dynamic shared allocation. Every lane must call it.</summary>
    static abstract FragmentA LoadMatrices(ArrayView<Word4> shared, int chunk);

    /// <summary>cp.async.cg 16 bytes: global[<paramref name="globalChunk"/>] (device address
    /// <paramref name="globalBase"/> + 16 globalChunk) to shared[<paramref name="chunk"/>],
    /// zeros where !<paramref name="inRange"/> (nothing is read then). Visible to this thread
    /// after <see cref="WaitForCopies"/>, to the group after a barrier too.</summary>
    static abstract void CopyAsync(ArrayView<Word4> shared, int chunk, ArrayView<Word4> global,
        long globalBase, long globalChunk, bool inRange);

    /// <summary>cp.async.commit_group: the copies issued since the last call form a group.
    /// </summary>
    static abstract void CommitCopies();

    /// <summary>cp.async.wait_group 1: every group but the latest has landed (this thread's).
    /// </summary>
    static abstract void WaitForCopies();
}

/// <summary>TF32 on the tensor cores (inline PTX, CUDA only).</summary>
internal readonly struct TensorCoreTf32 : ITf32Core
{
    public static uint Round(float x)
    {
        CudaAsm.Emit("cvt.rna.tf32.f32 %0, %1;", out uint bits, x);
        return bits;
    }

    public static void MultiplyAdd(ref Accumulator c, FragmentA a, uint b0, uint b1)
    {
        Ref<float> c0 = c.C0, c1 = c.C1, c2 = c.C2, c3 = c.C3;
        Input<uint> a0 = a.A0, a1 = a.A1, a2 = a.A2, a3 = a.A3, x0 = b0, x1 = b1;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
            + "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
            ref c0, ref c1, ref c2, ref c3, ref a0, ref a1, ref a2, ref a3, ref x0, ref x1);
        c.C0 = c0.Value; c.C1 = c1.Value; c.C2 = c2.Value; c.C3 = c3.Value;
    }

    public static FragmentA LoadMatrices(ArrayView<Word4> shared, int chunk) =>
        DynamicSharedMatrices.Load(chunk);

    public static void CopyAsync(ArrayView<Word4> shared, int chunk, ArrayView<Word4> global,
        long globalBase, long globalChunk, bool inRange) =>
        DynamicSharedMatrices.CopyAsync(chunk, globalBase + 16 * globalChunk, inRange);

    public static void CommitCopies() => CudaAsm.Emit("cp.async.commit_group;");

    public static void WaitForCopies() => CudaAsm.Emit("cp.async.wait_group 1;");
}

/// <summary>
/// <see cref="TensorCoreTf32"/> in software for ILGPU devices without tensor cores (tests):
/// the same rounding bit for bit; mma.sync.m16n8k8 as warp shuffles of whole fragments and 8
/// fp32 products per element (tf32 products are exact in fp32; the hardware's summation order
/// is its own, so results agree to rounding, not bit for bit); ldmatrix as shuffles and plain
/// loads; cp.async as plain copies. Every lane of the warp must call the warp-wide members.
/// </summary>
internal readonly struct EmulatedTf32 : ITf32Core
{
    public static uint Round(float x)
    {
        uint bits = Interop.FloatAsInt(x);
        // Add half a tf32 unit to the magnitude and cut: nearest, ties away from zero (a carry
        // moves into the exponent, up to infinity, as it should). Infinities and NaN as they are.
        return (bits & 0x7F80_0000u) == 0x7F80_0000u ? bits : (bits + 0x1000u) & 0xFFFF_E000u;
    }

    public static void MultiplyAdd(ref Accumulator c, FragmentA a, uint b0, uint b1)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        ulong b = b0 | (ulong)b1 << 32;
        for (int q = 0; q < 4; q++)
        {
            // Lane (g, q) holds A[g][q] (A0), A[g + 8][q] (A1), A[g][q + 4] (A2) and
            // A[g + 8][q + 4] (A3); lane (n, q) holds B[q][n] (b0) and B[q + 4][n] (b1).
            FragmentA row = Warp.Shuffle(a, 4 * g + q);
            ulong col0 = Warp.Shuffle(b, 8 * t + q), col1 = Warp.Shuffle(b, 8 * t + 4 + q);
            float b00 = F((uint)col0), b01 = F((uint)(col0 >> 32));
            float b10 = F((uint)col1), b11 = F((uint)(col1 >> 32));
            c.C0 += F(row.A0) * b00 + F(row.A2) * b01;
            c.C1 += F(row.A0) * b10 + F(row.A2) * b11;
            c.C2 += F(row.A1) * b00 + F(row.A3) * b01;
            c.C3 += F(row.A1) * b10 + F(row.A3) * b11;
        }
    }

    public static FragmentA LoadMatrices(ArrayView<Word4> shared, int chunk) =>
        EmulatedMma.LoadMatrices(shared, chunk);

    public static void CopyAsync(ArrayView<Word4> shared, int chunk, ArrayView<Word4> global,
        long globalBase, long globalChunk, bool inRange) =>
        shared[chunk] = inRange ? global[globalChunk] : default;

    public static void CommitCopies() { }

    public static void WaitForCopies() { }

    private static float F(uint bits) => Interop.IntAsFloat(bits);
}

/// <summary>
/// ldmatrix and cp.async through inline PTX on a kernel's dynamic shared memory: ILGPU 1.5.3
/// gives inline PTX no address of a view, so shared memory is addressed from the symbol ILGPU
/// gives the dynamic allocation (<c>SharedMemory.GetDynamic</c>), <see cref="Symbol"/>, plus 16
/// bytes per chunk; a kernel calling these must have no other shared allocation (the PTX
/// compile tests check the declarations). Global memory is a device address the host passes.
/// A wrong symbol fails in ptxas, never silently.
/// </summary>
internal static class DynamicSharedMatrices
{
    /// <summary>The PTX name of a kernel's dynamic shared allocation.</summary>
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

    /// <summary>cp.async.cg.shared.global of 16 bytes from device address
    /// <paramref name="source"/> to chunk <paramref name="chunk"/>; a source size of 0 where
    /// !<paramref name="inRange"/> fills zeros and reads nothing.</summary>
    public static void CopyAsync(int chunk, long source, bool inRange) =>
        CudaAsm.Emit("{ .reg .u32 d; .reg .u64 s; mov.u32 d, " + Symbol + "; "
            + "mad.lo.u32 d, %0, 16, d; cvta.to.global.u64 s, %1; "
            + "cp.async.cg.shared.global [d], [s], 16, %2; }", chunk, source, inRange ? 16 : 0);
}
