using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime.Cuda;
using Managed.Kernels.Decode;
using Managed.Kernels.Layouts;

namespace Managed.Kernels.TensorCores;

/// <summary>Four fp32 values of an m16n8 accumulator tile held by one lane (mma.sync's C and
/// D): C0, C1 at row lane/4, columns 2 (lane%4) and +1; C2, C3 at row lane/4 + 8.</summary>
internal struct Accumulator
{
    public float C0, C1, C2, C3;
}

/// <summary>One lane's four 32-bit registers of an m16k16 A operand (eight 16-bit values):
/// A0 row lane/4, columns 2 (lane%4) and +1; A1 row + 8; A2 columns + 8; A3 both.</summary>
internal struct FragmentA
{
    public uint A0, A1, A2, A3;
}

/// <summary>
/// A 16-bit type the tensor cores multiply (fp16 or bf16, fp32 accumulate), as an operator
/// type argument: packing fp32 pairs into it, widening back, mma.sync.m16n8k16 and pair
/// shuffles. <see cref="TensorCoreHalf"/> and <see cref="TensorCoreBFloat16"/> are inline PTX
/// (CUDA only); <see cref="EmulatedHalf"/> and <see cref="EmulatedBFloat16"/> compute the same
/// in software on any ILGPU device, so the tests run the tensor-core kernels on the ILGPU
/// CPU accelerator (separate types: a runtime branch left the emulation's calls and local
/// memory in the PTX). An fp32 value x multiplies exactly as the sum of <see cref="Splits"/> values of
/// the type (x = hi + mid + lo, each the rounding of what the ones before left), so one
/// multiply per part keeps the product to about 2^-22 (fp16, two parts) or 2^-24 (bf16,
/// three) of |x|: a K or V element of the type times such a sum is fp32-accurate.
/// </summary>
internal interface ITensorCoreType : IMmaCore
{
    /// <summary>Parts an fp32 operand is split into: 2 for fp16 (11 bits each), 3 for bf16
    /// (8 bits each).</summary>
    static abstract int Splits { get; }

    /// <summary>Whether an operand must be scaled into the type's range first: fp16 tops out
    /// at 65504 and its parts below 2^-14 lose bits, bf16 has fp32's exponent range.</summary>
    static abstract bool NarrowRange { get; }

    /// <summary>Two fp32 values rounded to nearest even, <paramref name="low"/> in bits 0-15.
    /// </summary>
    static abstract uint Pack(float low, float high);

    /// <summary>The low 16 bits of a packed pair, widened exactly.</summary>
    static abstract float Low(uint pair);

    /// <summary>The high 16 bits of a packed pair, widened exactly.</summary>
    static abstract float High(uint pair);

    /// <summary>(low half of a, low half of b): one column's values of two rows.</summary>
    static abstract uint Lows(uint a, uint b);

    /// <summary>(high half of a, high half of b).</summary>
    static abstract uint Highs(uint a, uint b);

    /// <summary>An 8 x 8 matrix of 16-bit values transposed across the warp: lane (r, c) =
    /// (lane/4, lane%4) holds row r, columns 2c and 2c + 1 in <paramref name="pair"/> and gets
    /// those of the transpose (movmatrix), every lane calling it.</summary>
    static abstract uint Transpose(uint pair);

    /// <summary>ldmatrix.x4.trans: as <see cref="IMmaCore.LoadMatrices"/> with each matrix transposed:
    /// lane (g, t) gets elements (2t, g) and (2t + 1, g) of matrix i (low half first).</summary>
    static abstract FragmentA LoadMatricesTransposed(ArrayView<Word4> shared, int chunk);
}

/// <summary>IEEE fp16 on the tensor cores (inline PTX).</summary>
internal readonly struct TensorCoreHalf : ITensorCoreType
{
    public static int Splits => 2;
    public static bool NarrowRange => true;

    public static uint Pack(float low, float high)
    {
        CudaAsm.Emit("cvt.rn.f16x2.f32 %0, %1, %2;", out uint pair, high, low);
        return pair;
    }

    public static float Exp2(float x) => SharedMatrices.Exp2(x);

    public static float Low(uint pair)
    {
        CudaAsm.Emit("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %1; cvt.f32.f16 %0, lo; }",
            out float widened, pair);
        return widened;
    }

    public static float High(uint pair)
    {
        CudaAsm.Emit("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %1; cvt.f32.f16 %0, hi; }",
            out float widened, pair);
        return widened;
    }

    public static void MultiplyAdd(ref Accumulator c, FragmentA a, uint b0, uint b1)
    {
        Ref<float> c0 = c.C0, c1 = c.C1, c2 = c.C2, c3 = c.C3;
        Input<uint> a0 = a.A0, a1 = a.A1, a2 = a.A2, a3 = a.A3, x0 = b0, x1 = b1;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
            + "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
            ref c0, ref c1, ref c2, ref c3, ref a0, ref a1, ref a2, ref a3, ref x0, ref x1);
        c.C0 = c0.Value; c.C1 = c1.Value; c.C2 = c2.Value; c.C3 = c3.Value;
    }

    public static uint Lows(uint a, uint b)
    {
        CudaAsm.Emit("prmt.b32 %0, %1, %2, 0x5410;", out uint r, a, b);
        return r;
    }

    public static uint Highs(uint a, uint b)
    {
        CudaAsm.Emit("prmt.b32 %0, %1, %2, 0x7632;", out uint r, a, b);
        return r;
    }

    public static uint Transpose(uint pair)
    {
        CudaAsm.Emit("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;", out uint r, pair);
        return r;
    }
    public static FragmentA LoadMatrices(ArrayView<Word4> shared, int chunk) =>
        SharedMatrices.Load(chunk);

    public static FragmentA LoadMatricesTransposed(ArrayView<Word4> shared, int chunk) =>
        SharedMatrices.LoadTransposed(chunk);

    public static void CopyAsync(ArrayView<Word4> shared, int chunk, ArrayView<Word4> global,
        long globalBase, long globalChunk, bool inRange) =>
        SharedMatrices.CopyAsync(chunk, globalBase + 16 * globalChunk, inRange);

    public static void CommitCopies() => CudaAsm.Emit("cp.async.commit_group;");

    public static void WaitForCopies() => CudaAsm.Emit("cp.async.wait_group 1;");
}

/// <summary>bfloat16 on the tensor cores (inline PTX).</summary>
internal readonly struct TensorCoreBFloat16 : ITensorCoreType
{
    public static int Splits => 3;
    public static bool NarrowRange => false;

    public static uint Pack(float low, float high)
    {
        CudaAsm.Emit("cvt.rn.bf16x2.f32 %0, %1, %2;", out uint pair, high, low);
        return pair;
    }

    public static float Exp2(float x) => SharedMatrices.Exp2(x);

    public static float Low(uint pair) => Interop.IntAsFloat(pair << 16);

    public static float High(uint pair) => Interop.IntAsFloat(pair & 0xFFFF_0000u);

    public static void MultiplyAdd(ref Accumulator c, FragmentA a, uint b0, uint b1)
    {
        Ref<float> c0 = c.C0, c1 = c.C1, c2 = c.C2, c3 = c.C3;
        Input<uint> a0 = a.A0, a1 = a.A1, a2 = a.A2, a3 = a.A3, x0 = b0, x1 = b1;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
            + "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
            ref c0, ref c1, ref c2, ref c3, ref a0, ref a1, ref a2, ref a3, ref x0, ref x1);
        c.C0 = c0.Value; c.C1 = c1.Value; c.C2 = c2.Value; c.C3 = c3.Value;
    }

    public static uint Lows(uint a, uint b)
    {
        CudaAsm.Emit("prmt.b32 %0, %1, %2, 0x5410;", out uint r, a, b);
        return r;
    }

    public static uint Highs(uint a, uint b)
    {
        CudaAsm.Emit("prmt.b32 %0, %1, %2, 0x7632;", out uint r, a, b);
        return r;
    }

    public static uint Transpose(uint pair)
    {
        CudaAsm.Emit("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;", out uint r, pair);
        return r;
    }
    public static FragmentA LoadMatrices(ArrayView<Word4> shared, int chunk) =>
        SharedMatrices.Load(chunk);

    public static FragmentA LoadMatricesTransposed(ArrayView<Word4> shared, int chunk) =>
        SharedMatrices.LoadTransposed(chunk);

    public static void CopyAsync(ArrayView<Word4> shared, int chunk, ArrayView<Word4> global,
        long globalBase, long globalChunk, bool inRange) =>
        SharedMatrices.CopyAsync(chunk, globalBase + 16 * globalChunk, inRange);

    public static void CommitCopies() => CudaAsm.Emit("cp.async.commit_group;");

    public static void WaitForCopies() => CudaAsm.Emit("cp.async.wait_group 1;");
}

/// <summary>
/// mma.sync.m16n8k16 in software for ILGPU devices without tensor cores (the tests run the
/// tensor-core kernels on the ILGPU CPU accelerator through it): each lane gathers the A row
/// pairs and B column pairs it needs from the lanes holding them (warp shuffles) and sums the
/// 16 products in fp32. Every lane of the warp must call it. The hardware's summation order
/// within an mma is its own, so results agree to rounding, not bit for bit.
/// </summary>
internal static class EmulatedMma
{
    public static void MultiplyAdd<TCore>(ref Accumulator c, FragmentA a, uint b0, uint b1)
        where TCore : struct, ITensorCoreType
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        int column0 = 4 * (2 * t), column1 = 4 * (2 * t + 1);
        // Whole fragments per shuffle (3 per q, not 8): on the ILGPU CPU accelerator each
        // shuffle is a warp barrier, which sets the tests' run time.
        ulong b = b0 | (ulong)b1 << 32;
        for (int q = 0; q < 4; q++)
        {
            // Lane (g, q) holds row g's k = 2q, 2q+1 (A0) and 2q+8, 2q+9 (A2), row g+8's in
            // A1, A3; lane (n, q) holds column n's same k in b0, b1.
            FragmentA row = Warp.Shuffle(a, 4 * g + q);
            ulong col0 = Warp.Shuffle(b, column0 + q), col1 = Warp.Shuffle(b, column1 + q);
            uint col0Low = (uint)col0, col0High = (uint)(col0 >> 32);
            uint col1Low = (uint)col1, col1High = (uint)(col1 >> 32);
            c.C0 += Dot<TCore>(row.A0, row.A2, col0Low, col0High);
            c.C1 += Dot<TCore>(row.A0, row.A2, col1Low, col1High);
            c.C2 += Dot<TCore>(row.A1, row.A3, col0Low, col0High);
            c.C3 += Dot<TCore>(row.A1, row.A3, col1Low, col1High);
        }
    }

    /// <summary>movmatrix.m8n8.trans.b16: lane (r, c) gets element (r, 2c) of the transpose,
    /// element (2c, r) of the input, from lane 8c + r/2, and (2c + 1, r) from lane 8c + 4 +
    /// r/2, the half r%2 of each.</summary>
    public static uint Transpose(uint pair)
    {
        int lane = Warp.LaneIdx, r = lane >> 2, c = lane & 3, shift = (r & 1) * 16;
        uint low = Shuffle(pair, 8 * c + (r >> 1)), high = Shuffle(pair, 8 * c + 4 + (r >> 1));
        return ((low >> shift) & 0xFFFF) | ((high >> shift) & 0xFFFF) << 16;
    }

    /// <summary>ldmatrix.x4 by shuffles and plain loads: register i of lane (g, t) is word t
    /// of the chunk whose index lane 8i + g gave.</summary>
    public static FragmentA LoadMatrices(ArrayView<Word4> shared, int chunk)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        return new FragmentA
        {
            A0 = WordOf(shared[Warp.Shuffle(chunk, g)], t),
            A1 = WordOf(shared[Warp.Shuffle(chunk, 8 + g)], t),
            A2 = WordOf(shared[Warp.Shuffle(chunk, 16 + g)], t),
            A3 = WordOf(shared[Warp.Shuffle(chunk, 24 + g)], t),
        };
    }

    /// <summary>ldmatrix.x4.trans: register i of lane (g, t) holds element g of the chunks
    /// lanes 8i + 2t and 8i + 2t + 1 gave.</summary>
    public static FragmentA LoadMatricesTransposed(ArrayView<Word4> shared, int chunk)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        return new FragmentA
        {
            A0 = ColumnPair(shared, Warp.Shuffle(chunk, 2 * t), Warp.Shuffle(chunk, 2 * t + 1), g),
            A1 = ColumnPair(shared, Warp.Shuffle(chunk, 8 + 2 * t),
                Warp.Shuffle(chunk, 9 + 2 * t), g),
            A2 = ColumnPair(shared, Warp.Shuffle(chunk, 16 + 2 * t),
                Warp.Shuffle(chunk, 17 + 2 * t), g),
            A3 = ColumnPair(shared, Warp.Shuffle(chunk, 24 + 2 * t),
                Warp.Shuffle(chunk, 25 + 2 * t), g),
        };
    }

    private static uint ColumnPair(ArrayView<Word4> shared, int low, int high, int column) =>
        HalfOf(shared[low], column) | HalfOf(shared[high], column) << 16;

    private static uint HalfOf(Word4 w, int column) =>
        (WordOf(w, column >> 1) >> (16 * (column & 1))) & 0xFFFF;

    private static uint WordOf(Word4 w, int i) => i == 0 ? w.X : i == 1 ? w.Y : i == 2 ? w.Z : w.W;

    private static float Dot<TCore>(uint aLow, uint aHigh, uint bLow, uint bHigh)
        where TCore : struct, ITensorCoreType =>
        TCore.Low(aLow) * TCore.Low(bLow) + TCore.High(aLow) * TCore.High(bLow)
        + TCore.Low(aHigh) * TCore.Low(bHigh) + TCore.High(aHigh) * TCore.High(bHigh);

    private static uint Shuffle(uint value, int lane) =>
        (uint)Warp.Shuffle((int)value, lane);
}

/// <summary><see cref="TensorCoreHalf"/> in software (tests).</summary>
internal readonly struct EmulatedHalf : ITensorCoreType
{
    public static int Splits => TensorCoreHalf.Splits;
    public static bool NarrowRange => TensorCoreHalf.NarrowRange;

    public static uint Pack(float low, float high) =>
        HalfBits.FromSingle(low) | (uint)HalfBits.FromSingle(high) << 16;

    public static float Exp2(float x) => XMath.Exp2(x);

    public static float Low(uint pair) => HalfBits.Widen(pair & 0xFFFF);
    public static float High(uint pair) => HalfBits.Widen(pair >> 16);

    public static void MultiplyAdd(ref Accumulator c, FragmentA a, uint b0, uint b1) =>
        EmulatedMma.MultiplyAdd<EmulatedHalf>(ref c, a, b0, b1);

    public static uint Lows(uint a, uint b) => (a & 0xFFFF) | (b << 16);
    public static uint Highs(uint a, uint b) => (a >> 16) | (b & 0xFFFF_0000u);
    public static uint Transpose(uint pair) => EmulatedMma.Transpose(pair);
    public static FragmentA LoadMatrices(ArrayView<Word4> shared, int chunk) =>
        EmulatedMma.LoadMatrices(shared, chunk);

    public static FragmentA LoadMatricesTransposed(ArrayView<Word4> shared, int chunk) =>
        EmulatedMma.LoadMatricesTransposed(shared, chunk);

    public static void CopyAsync(ArrayView<Word4> shared, int chunk, ArrayView<Word4> global,
        long globalBase, long globalChunk, bool inRange) =>
        shared[chunk] = inRange ? global[globalChunk] : default;

    public static void CommitCopies() { }

    public static void WaitForCopies() { }
}

/// <summary><see cref="TensorCoreBFloat16"/> in software (tests).</summary>
internal readonly struct EmulatedBFloat16 : ITensorCoreType
{
    public static int Splits => TensorCoreBFloat16.Splits;
    public static bool NarrowRange => TensorCoreBFloat16.NarrowRange;

    public static uint Pack(float low, float high) =>
        BFloat16Bits.FromSingle(low) | (uint)BFloat16Bits.FromSingle(high) << 16;

    public static float Exp2(float x) => XMath.Exp2(x);

    public static float Low(uint pair) => Interop.IntAsFloat(pair << 16);
    public static float High(uint pair) => Interop.IntAsFloat(pair & 0xFFFF_0000u);

    public static void MultiplyAdd(ref Accumulator c, FragmentA a, uint b0, uint b1) =>
        EmulatedMma.MultiplyAdd<EmulatedBFloat16>(ref c, a, b0, b1);

    public static uint Lows(uint a, uint b) => (a & 0xFFFF) | (b << 16);
    public static uint Highs(uint a, uint b) => (a >> 16) | (b & 0xFFFF_0000u);
    public static uint Transpose(uint pair) => EmulatedMma.Transpose(pair);
    public static FragmentA LoadMatrices(ArrayView<Word4> shared, int chunk) =>
        EmulatedMma.LoadMatrices(shared, chunk);

    public static FragmentA LoadMatricesTransposed(ArrayView<Word4> shared, int chunk) =>
        EmulatedMma.LoadMatricesTransposed(shared, chunk);

    public static void CopyAsync(ArrayView<Word4> shared, int chunk, ArrayView<Word4> global,
        long globalBase, long globalChunk, bool inRange) =>
        shared[chunk] = inRange ? global[globalChunk] : default;

    public static void CommitCopies() { }

    public static void WaitForCopies() { }
}

