using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>E3 <see cref="PrefixScanAttention"/> (Aaren: one query's attention over every
/// prefix; GQA 2 and MQA) against fp64 exact causal attention with that query on every row.
/// </summary>
internal sealed class PrefixScanMechanism : IMechanism
{
    public string Name => "aaren-scan";
    public string CatalogId => "E3";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<MechanismResult>();
        foreach (var (kvHeads, n) in new[] { (2, 100), (1, 257) })
        {
            var shape = new PrefixScanShape(2, 4, kvHeads, n, 16, 12);
            float[] q = Uniform(rng, shape.QueryLength), k = Uniform(rng, shape.KeyLength),
                v = Uniform(rng, shape.ValueLength);
            var o = new float[shape.OutputLength];
            PrefixScanAttention.Forward(device, shape, q, k, v, o);
            var exact = new AttentionShape(2, 4, kvHeads, n, n, 16, 12);
            var rows = new float[exact.QueryLength];
            for (int bh = 0; bh < 2 * 4; bh++)
                for (int t = 0; t < n; t++)
                    Array.Copy(q, bh * 16, rows, ((long)bh * n + t) * 16, 16);
            var (expected, _) = ReferenceAttention.Forward(exact, rows, k, v, default(NoScore),
                default(CausalMask));
            results.Add(new($"{shape}", o, expected));
        }
        return results;
    }
}
