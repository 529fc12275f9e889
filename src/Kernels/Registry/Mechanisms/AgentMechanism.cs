using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L4 <see cref="AgentAttention"/> (agents attend to the keys, queries to the agents;
/// GQA 2 and MQA) against two fp64 exact attentions, the second reading the first's result
/// rounded to float as the kernels do.</summary>
internal sealed class AgentMechanism : IMechanism
{
    public string Name => "agent-a16";
    public string CatalogId => "L4";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<MechanismResult>();
        foreach (var (kvHeads, n) in new[] { (2, 100), (1, 257) })
        {
            var shape = new AgentAttentionShape(2, 4, kvHeads, n, n, 8, 16, 12);
            float[] q = Uniform(rng, shape.QueryLength), k = Uniform(rng, shape.KeyLength),
                v = Uniform(rng, shape.ValueLength), a = Uniform(rng, shape.AgentLength);
            var o = new float[shape.OutputLength];
            AgentAttention.Forward(device, shape, q, k, v, a, o);
            var (agentValues, _) = ReferenceAttention.Forward(shape.AgentStage, a, k, v,
                default(NoScore), default(NoMask));
            var (expected, _) = ReferenceAttention.Forward(shape.QueryStage, q, a,
                Narrow(agentValues), default(NoScore), default(NoMask));
            results.Add(new($"{shape.AgentStage} then {shape.QueryStage.SeqK} agents", o,
                expected));
        }
        return results;
    }
}
