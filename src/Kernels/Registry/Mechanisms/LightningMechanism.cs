using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L1 <see cref="LightningAttention"/> (TransNormerLLM's head decays, GQA 2) against
/// the materialized O = [(Q K^T) (.) M] V, at a length that is not a multiple of the chunk,
/// chunk sizes 16 and the default, and without decay.</summary>
internal sealed class LightningMechanism : IMechanism
{
    public string Name => "lightning";
    public string CatalogId => "L1";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var shape = new LinearAttentionShape(2, 4, 2, 100, 8, 12);
        float[] q = Uniform(rng, shape.QueryLength, 0.5f), k = Uniform(rng, shape.KeyLength, 0.5f),
            v = Uniform(rng, shape.ValueLength);
        var results = new List<MechanismResult>();
        foreach (var (decay, chunk) in new (float[], int?)[]
            { (LightningAttention.Decays(2), 16), (LightningAttention.Decays(2), null), ([], null) })
        {
            var o = new float[shape.OutputLength];
            LightningAttention.Forward(device, shape, q, k, v, decay, o, chunkSize: chunk);
            var expected = ReferenceLinearMechanisms.Lightning(shape, Wide(q), Wide(k), Wide(v),
                decay);
            results.Add(new($"{shape} {(decay.Length == 0 ? "no decay" : "TNL decays")} chunk "
                + $"{chunk?.ToString() ?? "default"}", o, expected));
        }
        return results;
    }
}
