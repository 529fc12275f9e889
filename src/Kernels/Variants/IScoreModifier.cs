using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>
/// Rewrites a scaled logit s = scale * q.k before the softmax (FlexAttention's <c>score_mod</c>).
/// <c>q</c> is the query position on the key axis (see <see cref="QueryAlignment"/>).
/// Pure, allocation-free, never throws.
/// </summary>
public interface IScoreModifier
{
    /// <summary>The rewritten score of one (query, key) pair. Called by GPU kernels and the reference.</summary>
    float Apply(float score, int batch, int head, int q, int k);

    /// <summary>
    /// Rewrites <paramref name="scores"/>[j] = Apply(scores[j], batch, head, q, k0 + j) in place.
    /// The CPU kernel calls this on a row of a tile, so implementations vectorize it.
    /// </summary>
    void ApplyRow(Span<float> scores, int batch, int head, int q, int k0);
}
