using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L9 <see cref="L2VitAttention"/>: the global mixer with its local concentration
/// module (ReLU features, random temperatures and LCM weights, GQA 2, the authors' floor 100
/// and a floor below the denominators) and the window mixer (a grid whose sides are not
/// multiples of the window, GQA 2), against fp64.</summary>
internal sealed class L2VitMechanism : IMechanism
{
    public string Name => "l2vit";
    public string CatalogId => "L9";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<MechanismResult>();
        foreach (var (shape, height, width, floor) in new[] {
            (new LinearAttentionShape(2, 4, 2, 35, 8, 6), 5, 7, 100f),
            (new LinearAttentionShape(1, 2, 2, 72, 6, 5), 8, 9, 1e-3f) })
        {
            float[] q = Relu(Uniform(rng, shape.QueryLength, 2f)),
                k = Relu(Uniform(rng, shape.KeyLength, 2f)), v = Uniform(rng, shape.ValueLength),
                tau = Uniform(rng, shape.Heads);
            var lcm = RandomLcm(rng, 3, shape.Heads, shape.ValueDim);
            var o = new float[shape.OutputLength];
            L2VitAttention.GlobalWithLcm(device, shape, height, width, q, k, v, tau, lcm, o,
                floor);
            var a = ReferenceL2Vit.Global(shape, Wide(q), Wide(k), Wide(v), Wide(tau), floor);
            var local = ReferenceL2Vit.LocalConcentration(shape.Batch, shape.Heads, height,
                width, shape.ValueDim, a, lcm);
            for (int e = 0; e < a.Length; e++) a[e] += local[e];
            results.Add(new($"global+lcm {shape} grid {height}x{width} floor {floor}", o, a));
        }
        {
            int b = 1, h = 4, hk = 2, height = 9, width = 10, window = 4, d = 8, dv = 6,
                n = height * width;
            var shape = new AttentionShape(b, h, hk, n, n, d, dv);
            float[] q = Uniform(rng, shape.QueryLength), k = Uniform(rng, shape.KeyLength),
                v = Uniform(rng, shape.ValueLength);
            var o = new float[shape.OutputLength];
            L2VitAttention.Window(device, shape, height, width, window, q, k, v, o);
            results.Add(new($"window {window} {shape} grid {height}x{width}", o,
                ReferenceL2Vit.Window(b, h, hk, height, width, window, d, dv, Wide(q), Wide(k),
                    Wide(v), 1 / Math.Sqrt(d))));
        }
        return results;
    }

    /// <summary>max(x, 0) in place.</summary>
    internal static float[] Relu(float[] x)
    {
        for (int i = 0; i < x.Length; i++) x[i] = MathF.Max(x[i], 0f);
        return x;
    }

    /// <summary>LCM weights uniform in [-0.5, 0.5), batch-norm scales in [0.5, 1.5).</summary>
    internal static L2VitLcmWeights RandomLcm(Random rng, int kernel, int heads, int dim)
    {
        int conv = heads * dim * kernel * kernel, ch = heads * dim;
        var scale = Uniform(rng, ch, 0.5f);
        for (int i = 0; i < ch; i++) scale[i] += 1f;
        return new L2VitLcmWeights(kernel, Uniform(rng, conv, 0.5f), Uniform(rng, ch, 0.5f),
            scale, Uniform(rng, ch, 0.5f), Uniform(rng, conv, 0.5f), Uniform(rng, ch, 0.5f));
    }
}
