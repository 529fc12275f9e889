using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L3 <see cref="HedgehogAttention"/> (random per-head map weights, separate query and
/// key maps, GQA 2) against normalized attention over the fp64 maps, causal and not.</summary>
internal sealed class HedgehogMechanism : IMechanism
{
    private const int Dim = 8, Half = 6;

    public string Name => "hedgehog-m6";
    public string CatalogId => "L3";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var shape = new LinearAttentionShape(2, 4, 2, 67, 2 * Half, 12);
        float[] q = Uniform(rng, (long)shape.Batch * shape.Heads * shape.Length * Dim),
            k = Uniform(rng, (long)shape.Batch * shape.KvHeads * shape.Length * Dim),
            v = Uniform(rng, shape.ValueLength),
            wq = Uniform(rng, (long)shape.Heads * Half * (Dim + 1), 0.5f),
            wk = Uniform(rng, (long)shape.KvHeads * Half * (Dim + 1), 0.5f);
        var phiQ = ReferenceLinearMechanisms.HedgehogFeatures(shape.Batch * shape.Heads * shape.Length,
            shape.Heads, shape.Length, Dim, Half, Wide(q), wq);
        var phiK = ReferenceLinearMechanisms.HedgehogFeatures(
            shape.Batch * shape.KvHeads * shape.Length, shape.KvHeads, shape.Length, Dim, Half,
            Wide(k), wk);
        var results = new List<MechanismResult>();
        foreach (bool causal in new[] { false, true })
        {
            var o = new float[shape.OutputLength];
            Forward(device, shape, wq, wk, q, k, v, o, causal);
            results.Add(new($"{shape} map dim {Dim} {(causal ? "causal" : "global")}", o,
                ReferenceLinearMechanisms.Normalized(shape, phiQ, phiK, Wide(v), causal)));
        }
        return results;
    }

    private static void Forward(ComputeDevice device, LinearAttentionShape shape, float[] wq,
        float[] wk, float[] q, float[] k, float[] v, float[] o, bool causal)
    {
        var tq = new VariantTable<float>(wq);
        var tk = new VariantTable<float>(wk);
        if (device.IsHost)
        {
            HedgehogAttention.Forward(device, shape, Dim,
                new HedgehogMap<HostTable<float>>(tq.Host, Half),
                new HedgehogMap<HostTable<float>>(tk.Host, Half), q, k, v, o, causal);
            return;
        }
        using var bq = tq.Upload(device.Accelerator!);
        using var bk = tk.Upload(device.Accelerator!);
        HedgehogAttention.Forward(device, shape, Dim,
            new HedgehogMap<DeviceTable<float>>(new(bq.View.SubView(0, tq.Length)), Half),
            new HedgehogMap<DeviceTable<float>>(new(bk.View.SubView(0, tk.Length)), Half),
            q, k, v, o, causal);
    }
}
