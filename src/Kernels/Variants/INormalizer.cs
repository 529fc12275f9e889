using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>
/// How a row's modified logits s_j become the weights w_j of V: O = sum_j w_j v_j, divided by
/// sum_j w_j when <see cref="DividesBySum"/>. Softmax is w_j = exp(s_j) (the kernels keep a
/// running max and rescale online); the replacements are elementwise and need no running max.
/// A masked logit is -infinity and must get weight 0. The members are compile-time facts
/// (static, folded when the kernel is specialized) and per-row / per-element functions.
/// <see cref="AttentionMerge"/> combines partial results of normalizers that divide by the sum
/// (softmax, softplus); sigmoid partials simply add, and clipped softmax cannot be split over
/// keys (its weights need the whole row's log-sum-exp).
/// </summary>
public interface INormalizer
{
    /// <summary>True for softmax: exp(s - m) with a running max m, rescaled online.</summary>
    static abstract bool IsSoftmax { get; }

    /// <summary>True: the output row is divided by the sum of its weights (l1 normalization).</summary>
    static abstract bool DividesBySum { get; }

    /// <summary>True: <see cref="Weight"/> needs the row's softmax log-sum-exp, so the kernel runs
    /// twice: softmax first for the log-sum-exp, then this normalizer.</summary>
    static abstract bool NeedsLogSumExp { get; }

    /// <summary>The per-row value <see cref="Weight"/> takes, from the query position and (when
    /// <see cref="NeedsLogSumExp"/>) the row's softmax log-sum-exp; computed once per row.</summary>
    float RowParameter(int position, float logSumExp);

    /// <summary>w(s) for one logit; -infinity gives 0. Not called for softmax.</summary>
    float Weight(float score, float rowParameter);

    /// <summary>The defining formula in double precision, for the reference: w(s) given the
    /// query position and the row's exact softmax log-sum-exp.</summary>
    double ReferenceWeight(double score, int position, double logSumExp);
}
