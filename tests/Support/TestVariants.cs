using Managed.Kernels.Variants;

namespace Managed.Tests.Support;

/// <summary>Adds the constant c to every logit: softmax is invariant, log-sum-exp shifts by c.</summary>
public readonly struct ShiftScore(float shift) : IScoreModifier
{
    /// <summary>s + c</summary>
    public float Apply(float score, int batch, int head, int q, int k) => score + shift;

    /// <summary>s + c on every element.</summary>
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0)
    {
        for (int j = 0; j < scores.Length; j++) scores[j] += shift;
    }
}

/// <summary>
/// Causal for a key block that starts at key <c>offset</c> of the whole sequence:
/// k + offset &lt;= q. Lets the second half of a split-KV run keep the mask of the full run.
/// </summary>
public readonly struct OffsetCausalMask(int offset) : IMaskPredicate
{
    /// <summary>k + offset &lt;= q</summary>
    public bool Allows(int batch, int head, int q, int k) => k + offset <= q;

    /// <summary>CausalMask's classes with keys shifted by offset.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        default(CausalMask).Classify(batch, head, q0, q1, k0 + offset, k1 + offset);

    /// <summary>0</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>q1 - offset: k + offset &lt;= q1 - 1.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => q1 - offset;
}
