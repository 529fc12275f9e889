namespace Managed.Kernels.Registry;

/// <summary>
/// One case of an <see cref="IMechanism"/>: what it computed and what the fp64 reference
/// computed on the same inputs. Pass rule per element: |actual - expected| &lt;= Rtol
/// (|expected| + mean |expected|): the mean magnitude stands for the scale of outputs that
/// are sums of terms of both signs; a NaN anywhere fails.
/// </summary>
/// <param name="Label">The case: shape and options.</param>
/// <param name="Actual">The mechanism's output on the device.</param>
/// <param name="Expected">The fp64 reference's output.</param>
/// <param name="Rtol">The bound, 1e-4 unless the mechanism's doc says why more.</param>
public sealed record MechanismResult(string Label, float[] Actual, double[] Expected,
    double Rtol = 1e-4)
{
    /// <summary>The worst |actual - expected| / (|expected| + mean |expected|) and whether
    /// every element is within <see cref="Rtol"/>; lengths that differ fail.</summary>
    public (double Worst, bool Pass) Verdict()
    {
        if (Actual.Length != Expected.Length) return (double.PositiveInfinity, false);
        double mean = 0;
        foreach (double e in Expected) mean += Math.Abs(e);
        mean = Expected.Length == 0 ? 0 : mean / Expected.Length;
        double worst = 0;
        bool pass = true;
        for (int i = 0; i < Actual.Length; i++)
        {
            double scale = Math.Abs(Expected[i]) + mean;
            double err = Math.Abs(Actual[i] - Expected[i]);
            double ratio = scale > 0 ? err / scale : err;
            if (double.IsNaN(ratio) || !(err <= Rtol * scale)) pass = false;
            worst = double.IsNaN(ratio) ? double.PositiveInfinity : Math.Max(worst, ratio);
        }
        return (worst, pass);
    }
}
