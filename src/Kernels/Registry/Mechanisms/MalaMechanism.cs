using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L7 <see cref="MalaAttention"/> (positive features as elu + 1 gives, GQA 2 and MHA,
/// lengths off the chunk) against the materialized magnitude-aware weights.</summary>
internal sealed class MalaMechanism : IMechanism
{
    public string Name => "mala";
    public string CatalogId => "L7";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<MechanismResult>();
        foreach (var shape in new[] { new LinearAttentionShape(2, 4, 2, 67, 8, 12),
            new LinearAttentionShape(1, 2, 2, 130, 6, 5) })
        {
            float[] q = PositiveFeatures(rng, shape.QueryLength),
                k = PositiveFeatures(rng, shape.KeyLength), v = Uniform(rng, shape.ValueLength);
            var o = new float[shape.OutputLength];
            MalaAttention.Forward(device, shape, q, k, v, o);
            results.Add(new($"{shape}", o, ReferenceMala.Forward(shape, Wide(q), Wide(k),
                Wide(v))));
        }
        return results;
    }

    /// <summary>elu(x) + 1 of x uniform in [-1, 1): features in (0.37, 2).</summary>
    internal static float[] PositiveFeatures(Random rng, long n)
    {
        var x = Uniform(rng, n);
        for (long i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] + 1 : MathF.Exp(x[i]);
        return x;
    }
}
