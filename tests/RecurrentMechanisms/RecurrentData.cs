using Managed.Kernels.Recurrent;
using Managed.Kernels.Registry.Mechanisms;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.RecurrentMechanisms;

/// <summary>Random EMA parameters and the shared checks of the recurrent mechanisms' tests.
/// </summary>
internal static class RecurrentData
{
    /// <summary>x (batch, length, dim) in +-1 and parameters (dim, emaDims): alpha, delta in
    /// [0.05, 1), beta in +-1, eta in +-0.5, omega (dim) in +-1.</summary>
    public static (float[] X, float[] Alpha, float[] Delta, float[] Beta, float[] Eta,
        float[] Omega) Ema(EmaShape s, int seed)
    {
        var x = Uniform(seed, s.SequenceLength);
        var alpha = Array.ConvertAll(Uniform(seed + 1, s.ParameterLength, 0.475f), a => a + 0.525f);
        var delta = Array.ConvertAll(Uniform(seed + 2, s.ParameterLength, 0.475f), a => a + 0.525f);
        return (x, alpha, delta, Uniform(seed + 3, s.ParameterLength),
            Uniform(seed + 4, s.ParameterLength, 0.5f), Uniform(seed + 5, s.Dim));
    }

    public static MegaWeights Mega(MegaShape s, int seed, int radius) =>
        MegaMechanism.Weights(new Random(seed), s, radius);

    public static TitansInputs Titans(TitansShape s, int seed) =>
        TitansMechanism.Inputs(new Random(seed), s);
}
