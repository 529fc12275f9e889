using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L10 <see cref="CenteredPolynomialAttention"/> of one order (GQA 2, head dim 8, a length that
/// is not a multiple of the chunk) against the explicit O(N^2) evaluation of the same weights
/// f(q~ . k~) / sum f, causal (chunk 16) and not.</summary>
internal sealed class CenteredPolynomialMechanism(int order) : IMechanism
{
    private const int HeadDim = 8;

    public string Name => $"polynomial-o{order}";
    public string CatalogId => "L10";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var raw = new AttentionShape(2, 4, 2, 67, 67, HeadDim, 12);
        var shape = new LinearAttentionShape(raw.Batch, raw.Heads, raw.KvHeads, raw.SeqQ,
            CenteredPolynomialAttention.Features(HeadDim, order), raw.ValueDim);
        float[] q = BasedInputs.Uniform(rng, raw.QueryLength),
            k = BasedInputs.Uniform(rng, raw.KeyLength),
            v = BasedInputs.Uniform(rng, raw.ValueLength);
        var results = new List<MechanismResult>();
        foreach (bool causal in new[] { false, true })
        {
            var o = new float[shape.OutputLength];
            CenteredPolynomialAttention.Forward(device, shape, HeadDim, order, q, k, v, o, causal,
                chunkSize: causal ? 16 : null);
            results.Add(new($"{shape} d={HeadDim} {(causal ? "causal chunk 16" : "global")}", o,
                ReferenceCenteredPolynomial.Attention(raw, order, BasedInputs.Wide(q), BasedInputs.Wide(k),
                    BasedInputs.Wide(v), causal)));
        }
        return results;
    }
}
