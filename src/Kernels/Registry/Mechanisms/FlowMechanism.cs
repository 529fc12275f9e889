using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L5 <see cref="FlowAttention"/> (KV heads = heads) against the materialized flow
/// network, non-causal and causal (prefix flows): the output, then the conserved flows.
/// </summary>
internal sealed class FlowMechanism : IMechanism
{
    public string Name => "flow";
    public string CatalogId => "L5";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var shape = new LinearAttentionShape(2, 3, 3, 67, 8, 12);
        float[] q = Uniform(rng, shape.QueryLength), k = Uniform(rng, shape.KeyLength),
            v = Uniform(rng, shape.ValueLength);
        var o = new float[shape.OutputLength];
        var conserved = new float[2L * shape.Batch * shape.Heads * shape.Length];
        FlowAttention.Forward(device, shape, q, k, v, o, conserved);
        var (expected, flows) = ReferenceLinearMechanisms.Flow(shape, Wide(q), Wide(k), Wide(v));
        var oCausal = new float[shape.OutputLength];
        var conservedCausal = new float[conserved.Length];
        FlowAttention.Forward(device, shape, q, k, v, oCausal, conservedCausal, causal: true);
        var (expectedCausal, flowsCausal) = ReferenceCausalFlow.Forward(shape, Wide(q), Wide(k),
            Wide(v));
        return
        [
            new($"{shape} output", o, expected),
            new($"{shape} conserved flows", conserved, flows),
            new($"{shape} causal output", oCausal, expectedCausal),
            new($"{shape} causal conserved flows", conservedCausal, flowsCausal),
        ];
    }
}
