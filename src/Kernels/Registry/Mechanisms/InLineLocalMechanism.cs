using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L6 <see cref="InLineAttention"/> with its local term (signed features, random
/// per-sample 3 x 3 weights; a class token and no bias as the paper's code, and a bias with
/// GQA 2) against the materialized weights plus direct convolution.</summary>
internal sealed class InLineLocalMechanism : IMechanism
{
    public string Name => "inline-local";
    public string CatalogId => "L6";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<MechanismResult>();
        foreach (var (shape, local, withBias) in new[] {
            (new LinearAttentionShape(2, 2, 2, 50, 8, 6), new InLineLocal(7, 7, 3, 1), false),
            (new LinearAttentionShape(1, 4, 2, 72, 6, 5), new InLineLocal(8, 9), true) })
        {
            float[] q = Uniform(rng, shape.QueryLength, 0.5f),
                k = Uniform(rng, shape.KeyLength, 0.5f), v = Uniform(rng, shape.ValueLength);
            long channels = (long)shape.Batch * shape.KvHeads * shape.ValueDim;
            float[] w = Uniform(rng, channels * local.Kernel * local.Kernel, 0.5f),
                bias = withBias ? Uniform(rng, channels, 0.5f) : [];
            var o = new float[shape.OutputLength];
            InLineAttention.Forward(device, shape, local, q, k, v, w, bias, o);
            results.Add(new($"{shape} grid {local.Height}x{local.Width} kernel {local.Kernel} "
                + $"prefix {local.Prefix}{(withBias ? " bias" : "")}", o, ReferenceInLineLocal.Forward(shape, local,
                Wide(q), Wide(k), Wide(v), w, bias)));
        }
        return results;
    }
}
