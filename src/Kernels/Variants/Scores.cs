using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU.Algorithms;
using Managed.Kernels.Simd;

namespace Managed.Kernels.Variants;

/// <summary>The score unchanged: s.</summary>
public readonly struct NoScore : IScoreModifier
{
    /// <summary>s</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k) => score;

    /// <summary>Nothing to do.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0) { }
}

/// <summary>
/// ALiBi (Press et al. 2022): s + m_h * (k - q) with slope m_h = 2^(-8 (h + 1) / H), the
/// geometric sequence of the paper for H heads (used as-is for H not a power of two).
/// default(AlibiScore) has no head count (its slopes would all be 1): entry points reject it.
/// </summary>
public readonly struct AlibiScore : IScoreModifier, IValidated
{
    private readonly float _log2Step;

    /// <summary>ALiBi for <paramref name="heads"/> query heads.</summary>
    public AlibiScore(int heads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        _log2Step = -8f / heads;
    }

    /// <summary>m_h = 2^(-8 (h + 1) / H). XMath.Exp2: on the host the same float as
    /// MathF.Pow(2, x); on GPUs one ex2 instruction that the compiler hoists out of the
    /// per-score code, where MathF.Pow became a software pow per score.</summary>
    public float Slope(int head) => XMath.Exp2(_log2Step * (head + 1));

    /// <summary>The head count is missing in a default instance (-8 / H &lt; 0
    /// otherwise).</summary>
    public string? ParameterError() => _log2Step < 0f ? null
        : VariantChecks.Missing(nameof(AlibiScore), "heads", "missing", ">= 1 query heads",
            isDefault: _log2Step == 0f);

    /// <summary>s + m_h (k - q)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k) => score + Slope(head) * (k - q);

    /// <summary>
    /// Row form: per element the same float operations as <see cref="Apply"/> (the int k - q
    /// converted to float, times the slope, plus s; no FMA), so both agree bit for bit. The
    /// bias is recomputed per lane, never accumulated: a running sum drifts over long rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0)
    {
        float slope = Slope(head);
        int j = 0;
        // (k0 + j) - q and (k0 - q) + j are the same int, wraparound included.
        int first = k0 - q;
        if (Vector512.IsHardwareAccelerated)
        {
            var m = Vector512.Create(slope);
            for (; j <= scores.Length - Vector512<float>.Count; j += Vector512<float>.Count)
            {
                var distance = Vector512.Create(first + j) + Vector512<int>.Indices;
                var s = Vector512.Create((ReadOnlySpan<float>)scores.Slice(j));
                (s + Vector512.ConvertToSingle(distance) * m).CopyTo(scores.Slice(j));
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var m = Vector256.Create(slope);
            for (; j <= scores.Length - Vector256<float>.Count; j += Vector256<float>.Count)
            {
                var distance = Vector256.Create(first + j) + Vector256<int>.Indices;
                var s = Vector256.Create((ReadOnlySpan<float>)scores.Slice(j));
                (s + Vector256.ConvertToSingle(distance) * m).CopyTo(scores.Slice(j));
            }
        }
        for (; j < scores.Length; j++) scores[j] += slope * (k0 + j - q);
    }
}

/// <summary>
/// Logit soft-capping (Gemma 2, Grok-1): cap * tanh(s / cap). default(SoftcapScore) has no cap
/// (cap 0 would make every score 0: uniform attention): entry points reject it.
/// </summary>
public readonly struct SoftcapScore : IScoreModifier, IValidated
{
    private readonly float _cap, _inverse;

    /// <summary>Soft-capping at <paramref name="cap"/> &gt; 0 (finite, and 1 / cap
    /// finite).</summary>
    public SoftcapScore(float cap)
    {
        if (!Valid(cap, 1f / cap))
            throw new ArgumentOutOfRangeException(nameof(cap), cap,
                "The cap must be finite and > 0, with 1 / cap finite.");
        _cap = cap;
        _inverse = 1f / cap;
    }

    /// <summary>The cap.</summary>
    public float Cap => _cap;

    /// <summary>The cap is missing (default) or invalid.</summary>
    public string? ParameterError() => Valid(_cap, _inverse) ? null
        : VariantChecks.Missing(nameof(SoftcapScore), "cap", _cap,
            "a finite cap > 0 with 1 / cap finite", isDefault: _cap == 0f);

    private static bool Valid(float cap, float inverse) =>
        cap > 0f && float.IsFinite(cap) && float.IsFinite(inverse);

    /// <summary>cap * tanh(s / cap)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k) => _cap * MathF.Tanh(score * _inverse);

    /// <summary>
    /// Row form, one pass: the same float products as <see cref="Apply"/> around a vectorized
    /// tanh that is correctly rounded but for rare double-rounding cases
    /// (<see cref="VectorMath.Tanh(ReadOnlySpan{float}, Span{float})"/>; TensorPrimitives.Tanh
    /// is hundreds of ulps off near 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0) =>
        VectorMath.ScaledTanh(scores, _inverse, _cap);
}
