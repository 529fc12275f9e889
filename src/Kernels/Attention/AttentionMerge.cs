
namespace Managed.Kernels.Attention;

/// <summary>
/// Merges attention computed over two disjoint key sets (split-KV decode, several devices):
/// lse = log(e^lseA + e^lseB), O = e^(lseA - lse) O_A + e^(lseB - lse) O_B.
/// A side with lse = -infinity (no allowed key) contributes nothing; both -infinity give O = 0.
/// </summary>
public static class AttentionMerge
{
    /// <summary>
    /// Merges row-wise: outputs (rows, valueDim), log-sum-exps (rows). The result may alias
    /// either input (same span), so merges can be chained in place.
    /// </summary>
    public static void Merge(int valueDim,
        ReadOnlySpan<float> outputA, ReadOnlySpan<float> logSumExpA,
        ReadOnlySpan<float> outputB, ReadOnlySpan<float> logSumExpB,
        Span<float> output, Span<float> logSumExp)
    {
        if (valueDim <= 0)
            throw new ArgumentException($"valueDim must be positive, got {valueDim}.", nameof(valueDim));
        int rows = logSumExpA.Length;
        long expected = (long)rows * valueDim;
        AttentionShape.CheckLength(logSumExpB.Length, rows, nameof(logSumExpB), $"rows {rows}");
        AttentionShape.CheckLength(logSumExp.Length, rows, nameof(logSumExp), $"rows {rows}");
        AttentionShape.CheckLength(outputA.Length, expected, nameof(outputA), $"rows {rows} x valueDim {valueDim}");
        AttentionShape.CheckLength(outputB.Length, expected, nameof(outputB), $"rows {rows} x valueDim {valueDim}");
        AttentionShape.CheckLength(output.Length, expected, nameof(output), $"rows {rows} x valueDim {valueDim}");
        for (int r = 0; r < rows; r++)
        {
            float a = logSumExpA[r], b = logSumExpB[r];
            float m = MathF.Max(a, b);
            float wa, wb, lse;
            if (float.IsNegativeInfinity(m)) { wa = wb = 0f; lse = float.NegativeInfinity; }
            else
            {
                // Shift by the max so neither exponent overflows.
                float ea = MathF.Exp(a - m), eb = MathF.Exp(b - m), sum = ea + eb;
                wa = ea / sum; wb = eb / sum; lse = m + MathF.Log(sum);
            }
            int o = r * valueDim;
            for (int c = 0; c < valueDim; c++)
                output[o + c] = wa * outputA[o + c] + wb * outputB[o + c];
            logSumExp[r] = lse;
        }
    }
}
