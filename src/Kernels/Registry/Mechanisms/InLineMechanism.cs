using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L6 <see cref="InLineAttention"/> (signed features, GQA 2 and MHA) against the
/// materialized subtractive weights.</summary>
internal sealed class InLineMechanism : IMechanism
{
    public string Name => "inline";
    public string CatalogId => "L6";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<MechanismResult>();
        foreach (var shape in new[] { new LinearAttentionShape(2, 4, 2, 67, 8, 12),
            new LinearAttentionShape(1, 2, 2, 130, 6, 5) })
        {
            float[] q = Uniform(rng, shape.QueryLength, 0.5f), k = Uniform(rng, shape.KeyLength, 0.5f),
                v = Uniform(rng, shape.ValueLength);
            var o = new float[shape.OutputLength];
            InLineAttention.Forward(device, shape, q, k, v, o);
            results.Add(new($"{shape}", o,
                ReferenceLinearMechanisms.InLine(shape, Wide(q), Wide(k), Wide(v))));
        }
        return results;
    }
}
