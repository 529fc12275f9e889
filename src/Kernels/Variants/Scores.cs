using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
/// </summary>
public readonly struct AlibiScore : IScoreModifier
{
    private readonly float _log2Step;

    /// <summary>ALiBi for <paramref name="heads"/> query heads.</summary>
    public AlibiScore(int heads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        _log2Step = -8f / heads;
    }

    /// <summary>m_h = 2^(-8 (h + 1) / H)</summary>
    public float Slope(int head) => MathF.Pow(2f, _log2Step * (head + 1));

    /// <summary>s + m_h (k - q)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k) => score + Slope(head) * (k - q);

    /// <summary>Row form: the slope is computed once, the bias added with SIMD.</summary>
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0)
    {
        float slope = Slope(head);
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var step = Vector256.Create(Vector256<float>.Count * slope);
            var bias = (Vector256.Create((float)(k0 - q)) + Vector256<float>.Indices) * slope;
            for (; j <= scores.Length - Vector256<float>.Count; j += Vector256<float>.Count)
            {
                var s = Vector256.Create((ReadOnlySpan<float>)scores.Slice(j));
                (s + bias).CopyTo(scores.Slice(j));
                bias += step;
            }
        }
        for (; j < scores.Length; j++) scores[j] += slope * (k0 + j - q);
    }
}

/// <summary>Logit soft-capping (Gemma 2, Grok-1): cap * tanh(s / cap).</summary>
public readonly struct SoftcapScore : IScoreModifier
{
    private readonly float _cap, _inverse;

    /// <summary>Soft-capping at <paramref name="cap"/> &gt; 0.</summary>
    public SoftcapScore(float cap)
    {
        if (!(cap > 0f) || float.IsInfinity(cap))
            throw new ArgumentOutOfRangeException(nameof(cap), cap, "The cap must be finite and > 0.");
        _cap = cap;
        _inverse = 1f / cap;
    }

    /// <summary>The cap.</summary>
    public float Cap => _cap;

    /// <summary>cap * tanh(s / cap)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float score, int batch, int head, int q, int k) => _cap * MathF.Tanh(score * _inverse);

    /// <summary>Row form through TensorPrimitives.</summary>
    public void ApplyRow(Span<float> scores, int batch, int head, int q, int k0)
    {
        TensorPrimitives.Multiply(scores, _inverse, scores);
        TensorPrimitives.Tanh(scores, scores);
        TensorPrimitives.Multiply(scores, _cap, scores);
    }
}
