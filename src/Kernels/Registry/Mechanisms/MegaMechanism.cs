using Managed.Kernels.Devices;
using Managed.Kernels.Recurrent;
using Managed.Kernels.Reference;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L11 <see cref="MegaAttention"/> (Mega-chunk, chunks of 16, causal) against the
/// fp64 layer of <see cref="ReferenceMega"/>, at a length that is not a multiple of the chunk,
/// and the whole sequence as one chunk (full Mega) against the unchunked reference.
/// </summary>
internal sealed class MegaMechanism : IMechanism
{
    public string Name => "mega-chunk16";
    public string CatalogId => "L11";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var shape = new MegaShape(2, 37, 12, 8, 16, 4);
        var weights = Weights(rng, shape, shape.Length - 1);
        var x = Uniform(rng, shape.SequenceLength);
        var results = new List<MechanismResult>();
        foreach (int chunk in new[] { 16, shape.Length })
        {
            var y = new float[shape.SequenceLength];
            MegaAttention.Forward(device, shape, x, weights, y, chunk);
            var expected = ReferenceMega.Layer(shape, x, weights,
                chunk >= shape.Length ? null : chunk);
            results.Add(new($"{shape} chunk {chunk}{(chunk >= shape.Length ? " (full)" : "")}",
                y, expected));
        }
        return results;
    }

    /// <summary>Random Mega weights for <paramref name="shape"/>: damping factors in
    /// [0.05, 1), matrices uniform in +-1/sqrt(in), biases and the relative bias table
    /// (radius <paramref name="radius"/>) in +-0.5, Q/K scales around 1.</summary>
    public static MegaWeights Weights(Random rng, MegaShape shape, int radius)
    {
        int d = shape.Dim, z = shape.ZDim, v = shape.HDim, m = shape.EmaDims;
        float[] Damping() => Array.ConvertAll(Uniform(rng, (long)d * m, 0.475f),
            a => a + 0.525f);
        float[] Matrix(int rows, int cols) =>
            Uniform(rng, (long)rows * cols, 1f / MathF.Sqrt(cols));
        return new MegaWeights
        {
            EmaAlpha = Damping(), EmaDelta = Damping(),
            EmaBeta = Uniform(rng, (long)d * m), EmaEta = Uniform(rng, (long)d * m, 0.5f),
            EmaOmega = Uniform(rng, d),
            ValueWeight = Matrix(v, d), ValueBias = Uniform(rng, v, 0.5f),
            ZWeight = Matrix(z, d), ZBias = Uniform(rng, z, 0.5f),
            QkScale = Array.ConvertAll(Uniform(rng, 2L * z, 0.5f), a => a + 1f),
            QkOffset = Uniform(rng, 2L * z, 0.5f),
            RelativeBias = Uniform(rng, 2L * radius + 1, 0.5f),
            GammaWeight = Matrix(v, d), GammaBias = Uniform(rng, v, 0.5f),
            PhiWeight = Matrix(d, d), PhiBias = Uniform(rng, d, 0.5f),
            HxWeight = Matrix(d, d), HxBias = Uniform(rng, d, 0.5f),
            HuWeight = Matrix(d, v),
        };
    }
}
