using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L13 <see cref="InducedSetAttention"/> (inducing points attend to the inputs, the
/// queries to the result; GQA 2 and MQA) against its two fp64 exact attentions, the second
/// reading the first's result rounded to float as the kernels do.</summary>
internal sealed class InducedSetMechanism : IMechanism
{
    public string Name => "isab-m6";
    public string CatalogId => "L13";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<MechanismResult>();
        foreach (var (kvHeads, n) in new[] { (2, 100), (1, 257) })
        {
            var shape = new InducedSetAttentionShape(2, 4, kvHeads, n, n, 6, 16);
            float[] q = Uniform(rng, shape.QueryLength), k = Uniform(rng, shape.KeyLength),
                v = Uniform(rng, shape.KeyLength), inducing = Uniform(rng, shape.InducingLength);
            var o = new float[shape.OutputLength];
            InducedSetAttention.Forward(device, shape, q, k, v, inducing, o);
            var (h, _) = ReferenceAttention.Forward(shape.InducingStage, inducing, k, v,
                default(NoScore), default(NoMask));
            var hf = Narrow(h);
            var (expected, _) = ReferenceAttention.Forward(shape.QueryStage, q, hf, hf,
                default(NoScore), default(NoMask));
            results.Add(new($"{shape.InducingStage} then queries", o, expected));
        }
        return results;
    }
}
