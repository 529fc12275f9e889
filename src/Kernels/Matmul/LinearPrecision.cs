namespace Managed.Kernels.Matmul;

/// <summary>The arithmetic of <see cref="Linear"/> (<see cref="LinearOptions.Precision"/>).
/// </summary>
public enum LinearPrecision : byte
{
    /// <summary>y = x W^T + bias with x and W exact (16-bit weights widened exactly), products
    /// and sums in fp32 (the default).</summary>
    Exact,

    /// <summary>
    /// Opt-in, for fp16 and bf16 weights on a CUDA device and more than
    /// <see cref="Linear.GemvMaxRows"/> rows (prefill): x is rounded to the weight's type
    /// (round to nearest even) and multiplied on the tensor cores (mma.sync.m16n8k16) with
    /// fp32 accumulation (<see cref="MmaGemmKernel"/>). That rounding of x is the only one
    /// added: W is used as stored, each product of two 16-bit values is exact in fp32 (at
    /// most 22 significant bits), and the bias is added in fp32. With x̂_k = x_k (1 + δ_k),
    /// |δ_k| ≤ u, where u is the unit roundoff of the type for round to nearest, u = 2^-8 for
    /// bf16 (8 significant bits) and 2^-11 for fp16 (11):
    /// |y - y_exact| ≤ u Σ_k |x_k w_k| + k 2^-23 (1 + u) Σ_k |x_k w_k| + 2^-24 |y|,
    /// the second term the fp32 accumulation (bounded as if every add truncated: the tensor
    /// cores' order and rounding within an mma are their own), the last the bias add. fp16
    /// adds 2^-25 Σ_k |w_k| (x below 2^-14 rounds to a subnormal, an absolute error of at most
    /// half its spacing 2^-24), and |x| ≥ 65520 becomes ±infinity (fp16's range ends at
    /// 65504); bf16 has fp32's exponent range. Everywhere else (the host, OpenCL, the ILGPU
    /// CPU accelerator, fp32 weights, GEMV rows, k not a multiple of 8, W not on 16 bytes) the
    /// exact kernels run and the results are those of <see cref="Exact"/>.
    /// </summary>
    WeightType,
}
