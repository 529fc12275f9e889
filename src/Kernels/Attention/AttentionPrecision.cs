namespace Managed.Kernels.Attention;

/// <summary>The arithmetic exact attention runs over fp32 Q, K and V
/// (<see cref="AttentionOptions.Precision"/>).</summary>
public enum AttentionPrecision : byte
{
    /// <summary>fp32 throughout: products, sums and the softmax in fp32 (the default).</summary>
    Exact,

    /// <summary>
    /// Opt-in, fp32 storage on CUDA: q, k, v and the attention weights P rounded to TF32 (10
    /// mantissa bits, nearest; relative error at most u = 2^-11 each) and multiplied on the
    /// tensor cores with fp32 accumulation; the softmax stays fp32. Output error at most
    /// (e^(2Δ) - 1 + 2u) max|v| plus fp32 terms, Δ = (2u + u²) scale max_j Σ_d |q_d k_jd| over
    /// the row's allowed keys (<see cref="FlashAttention.Tf32Bound"/>); the log-sum-exp moves by
    /// at most Δ. Elsewhere (the host, OpenCL, 16-bit storage, other normalizers or dims,
    /// strided layouts) the exact fp32 kernels run.
    /// </summary>
    Tf32,
}
