using ILGPU;
using Managed.Kernels.Decode;

namespace Managed.Kernels.TensorCores;

/// <summary>
/// What every tensor-core operator type offers the tile loops (<see cref="ITensorCoreType"/>
/// for fp16/bf16, <see cref="ITf32Core"/> for tf32): the mma into an m16n8 accumulator, the
/// ldmatrix of shared rows, cp.async copies into shared memory and the softmax's ex2. Shared
/// helpers (<see cref="Attention.MmaPrefillSteps"/>) are written once against it.
/// </summary>
internal interface IMmaCore
{
    /// <summary>2^x for the softmax weights, results below 2^-126 flushed to zero: one
    /// ex2.approx.ftz on CUDA (without .ftz ptxas wraps each ex2 in a range test and two
    /// multiplies); a weight that small is below fp32's resolution of the row sum (at least 1).
    /// </summary>
    static abstract float Exp2(float x);

    /// <summary>c += A * B, one warp together (every lane must call it), with the operand
    /// layouts of the type's mma shape (m16n8k16 for 16-bit types, m16n8k8 for tf32); c as
    /// <see cref="Accumulator"/> holds it.</summary>
    static abstract void MultiplyAdd(ref Accumulator c, FragmentA a, uint b0, uint b1);

    /// <summary>ldmatrix.x4: four 8 x 8 matrices of 16-bit values (8 x 4 of 32-bit words) from
    /// shared memory, lanes 8i..8i+7 giving the rows of matrix i as <paramref name="chunk"/>, a
    /// 16-byte index into <paramref name="shared"/>; lane (g, t) gets word t of row g of matrix
    /// i in register i. <paramref name="shared"/> must be the kernel's only shared allocation
    /// (the PTX names it). Every lane must call it.</summary>
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
