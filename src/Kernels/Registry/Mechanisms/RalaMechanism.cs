using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L8 <see cref="RalaAttention"/> (positive features, a random gate, GQA 2 and MHA,
/// lengths off the chunk) against the materialized rank-augmented weights.</summary>
internal sealed class RalaMechanism : IMechanism
{
    public string Name => "rala";
    public string CatalogId => "L8";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<MechanismResult>();
        foreach (var shape in new[] { new LinearAttentionShape(2, 4, 2, 67, 8, 12),
            new LinearAttentionShape(1, 2, 2, 130, 6, 5) })
        {
            float[] q = MalaMechanism.PositiveFeatures(rng, shape.QueryLength),
                k = MalaMechanism.PositiveFeatures(rng, shape.KeyLength),
                v = Uniform(rng, shape.ValueLength), gate = Uniform(rng, shape.OutputLength);
            var o = new float[shape.OutputLength];
            RalaAttention.Forward(device, shape, q, k, v, gate, o);
            results.Add(new($"{shape}", o, ReferenceRala.Forward(shape, Wide(q), Wide(k),
                Wide(v), Wide(gate), 1 / Math.Sqrt(shape.Features))));
        }
        return results;
    }
}
