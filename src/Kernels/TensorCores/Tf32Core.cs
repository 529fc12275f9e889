using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime.Cuda;
using Managed.Kernels.Decode;

namespace Managed.Kernels.TensorCores;

/// <summary>
/// TF32 on the tensor cores as an operator type argument
/// (<see cref="Attention.MmaTf32PrefillKernel"/>): rounding fp32 to tf32, mma.sync.m16n8k8 (tf32
/// operands, fp32 accumulation), ldmatrix of 32-bit words and cp.async. A tf32 value is an fp32
/// bit pattern whose low 13 mantissa bits are zero (10 explicit mantissa bits, fp32's exponent
/// range): <see cref="Round"/> rounds to nearest, ties away from zero (cvt.rna.tf32.f32), a
/// relative error of at most 2^-11.
/// <see cref="TensorCoreTf32"/> is inline PTX (CUDA only); <see cref="EmulatedTf32"/> computes
/// the same in software on any ILGPU device, so the tests run the kernel on the ILGPU CPU
/// accelerator. Shared memory is the kernel's one dynamic allocation
/// (<see cref="SharedMatrices"/>).
/// </summary>
internal interface ITf32Core : IMmaCore
{
    /// <summary>x rounded to tf32 (nearest, ties away from zero), as fp32 bits; infinities and
    /// NaN stay what they are.</summary>
    static abstract uint Round(float x);
}

/// <summary>TF32 on the tensor cores (inline PTX, CUDA only).</summary>
internal readonly struct TensorCoreTf32 : ITf32Core
{
    public static uint Round(float x)
    {
        CudaAsm.Emit("cvt.rna.tf32.f32 %0, %1;", out uint bits, x);
        return bits;
    }

    public static float Exp2(float x) => SharedMatrices.Exp2(x);

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
        SharedMatrices.Load(chunk);

    public static void CopyAsync(ArrayView<Word4> shared, int chunk, ArrayView<Word4> global,
        long globalBase, long globalChunk, bool inRange) =>
        SharedMatrices.CopyAsync(chunk, globalBase + 16 * globalChunk, inRange);

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

    public static float Exp2(float x) => XMath.Exp2(x);

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
