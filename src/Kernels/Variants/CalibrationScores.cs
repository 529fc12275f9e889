using System.Runtime.CompilerServices;
using Managed.Kernels.Simd;

namespace Managed.Kernels.Variants;

/// <summary>
/// Re-weights the attention of chosen keys (ZeroTuning C2; the sink-shrinking of ACT C1):
/// multiplying the softmax weight of keys k in [start, end) by f &gt; 0 and renormalising is
/// p'_k ∝ f p_k, i.e. the logit shift s + ln f on those keys: s + ln f for k in [start, end)
/// and heads h &lt; 64 with bit h of the head mask set, s otherwise. f = 1 adds exactly 0, so it
/// is exact attention; the other keys keep their ratios. ACT's rescale of the normalised
/// weight to exactly β p (mass redistributed) needs a row-dependent factor β (1 - p) / (1 - β p)
/// and is not a score modifier: not implemented. default(KeyReweightScore) re-weights no key
/// (the empty range [0, 0), no head): exact attention, as <c>new(0, 0, 1f)</c>.
/// </summary>
public readonly struct KeyReweightScore : IScoreModifier
{
    private readonly int _start, _end;
    private readonly float _shift;
    private readonly ulong _heads;

    /// <summary>Weight factor <paramref name="factor"/> (finite, &gt; 0) on keys
    /// [<paramref name="start"/>, <paramref name="end"/>) of the heads in
    /// <paramref name="heads"/> (bit h = head h; default all).</summary>
    public KeyReweightScore(int start, int end, float factor, ulong heads = ulong.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfLessThan(end, start);
        if (!(factor > 0f) || float.IsInfinity(factor))
            throw new ArgumentOutOfRangeException(nameof(factor), factor, "The factor must be finite and > 0.");
        (_start, _end, _shift, _heads) = (start, end, MathF.Log(factor), heads);
    }

    /// <summary>The first <paramref name="sinks"/> keys (the attention sinks) of all heads.</summary>
    public static KeyReweightScore Sinks(int sinks, float factor) => new(0, sinks, factor);

    /// <summary>ln f</summary>
    public float Shift => _shift;

    /// <summary>h &lt; 64 and bit h set</summary>
    public bool Covers(int head) => (uint)head < 64u && ((_heads >> head) & 1UL) != 0;

    /// <summary>s + ln f on covered keys and heads, else s</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k) =>
        k >= _start && k < _end && Covers(head) ? score + _shift : score;

    /// <summary>Adds ln f to the slice of the row inside [start, end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0)
    {
        if (!Covers(head)) return;
        int from = Math.Max(_start - k0, 0), to = (int)Math.Min((long)_end - k0, scores.Length);
        if (to > from) VectorMath.Add(scores.Slice(from, to - from), _shift);
    }
}
