namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>Random inputs of the mechanism cases.</summary>
internal static class MechanismInputs
{
    /// <summary><paramref name="n"/> values uniform in [-scale, scale).</summary>
    public static float[] Uniform(Random rng, long n, float scale = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    /// <summary>The float values widened to double (the references read what the kernels
    /// read).</summary>
    public static double[] Wide(float[] x) => Array.ConvertAll(x, v => (double)v);

    /// <summary>An fp64 stage's result rounded to float, as a kernel's next stage reads it.
    /// </summary>
    public static float[] Narrow(double[] x) => Array.ConvertAll(x, v => (float)v);
}
