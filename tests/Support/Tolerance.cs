using Xunit.Sdk;

namespace Managed.Tests.Support;

/// <summary>
/// The llm.c <c>validate_result</c> rule: |actual - expected| &lt;= atol + rtol * |expected|.
/// Infinities must match exactly (a fully masked row has log-sum-exp -infinity); NaN matches
/// only NaN.
/// </summary>
public readonly record struct Tolerance(double Atol, double Rtol)
{
    /// <summary>
    /// Outputs and log-sum-exps of fp32 kernels against the fp64 reference, inputs uniform in
    /// [-1, 1]: the CLI's atol 1e-5, rtol 1e-4. An output is a convex combination of values in
    /// [-1, 1]; fp32 rounding of the logits (|s| up to ~100 with ALiBi), of exp and of the
    /// accumulation over at most a few hundred keys stays around 1e-6 absolute, so 1e-5 leaves
    /// a margin of 10 without hiding a wrong weight (an error of one key's weight is ~1/Nk).
    /// </summary>
    public static Tolerance Kernel { get; } = new(1e-5, 1e-4);

    /// <summary>True when <paramref name="actual"/> passes against <paramref name="expected"/>.</summary>
    public bool Accepts(double actual, double expected)
    {
        if (double.IsNaN(expected) || double.IsNaN(actual)) return double.IsNaN(expected) && double.IsNaN(actual);
        if (double.IsInfinity(expected) || double.IsInfinity(actual)) return actual == expected;
        return Math.Abs(actual - expected) <= Atol + Rtol * Math.Abs(expected);
    }

    /// <summary>Fails with the first mismatch, the number of mismatches and <paramref name="context"/>.</summary>
    public void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, string what,
        object? context = null)
    {
        if (actual.Length != expected.Length)
            throw new XunitException($"{what}: length {actual.Length}, expected {expected.Length}. {context}");
        int bad = 0, first = -1;
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (Accepts(actual[i], expected[i])) continue;
            if (bad++ == 0) first = i;
            worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]));
        }
        if (bad > 0)
            throw new XunitException(
                $"{what}: {bad} of {actual.Length} elements outside atol {Atol:g3} + rtol {Rtol:g3}·|ref|; "
                + $"first at [{first}]: {actual[first]:R} vs {expected[first]:R}; worst |diff| {worst:g4}. {context}");
    }

    /// <summary>As the double overload, against a float result.</summary>
    public void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what,
        object? context = null)
    {
        var wide = new double[expected.Length];
        for (int i = 0; i < wide.Length; i++) wide[i] = expected[i];
        AssertClose(actual, wide, what, context);
    }
}
