using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>L2 BASED's two mixers (<see cref="BasedAttention"/>, GQA 2, a length that is not a
/// multiple of the chunk): the Taylor linear attention at the paper's feature dim 16 against
/// the naive quadratic form of 1 + s + s^2 / 2 (chunk 16 and the device's default), and the
/// sliding-window softmax of 16 keys against the fp64 windowed softmax.</summary>
internal sealed class BasedMechanism : IMechanism
{
    private const int FeatureDim = BasedAttention.PaperFeatureDim, Window = 16;

    public string Name => "based-w16";
    public string CatalogId => "L2";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var raw = new AttentionShape(2, 4, 2, 67, 67, FeatureDim, 12);
        var shape = new LinearAttentionShape(raw.Batch, raw.Heads, raw.KvHeads, raw.SeqQ,
            BasedAttention.Features(FeatureDim), raw.ValueDim);
        float[] q = BasedInputs.Uniform(rng, raw.QueryLength),
            k = BasedInputs.Uniform(rng, raw.KeyLength),
            v = BasedInputs.Uniform(rng, raw.ValueLength);
        double[] wq = BasedInputs.Wide(q), wk = BasedInputs.Wide(k), wv = BasedInputs.Wide(v);
        var results = new List<MechanismResult>();
        var linear = ReferenceBased.Linear(raw, wq, wk, wv);
        foreach (int? chunk in new int?[] { 16, null })
        {
            var o = new float[shape.OutputLength];
            BasedAttention.Linear(device, shape, FeatureDim, q, k, v, o, chunkSize: chunk);
            results.Add(new($"{shape} linear d'={FeatureDim} chunk "
                + $"{chunk?.ToString() ?? "default"}", o, linear));
        }
        var window = new float[raw.OutputLength];
        BasedAttention.Window(device, raw, Window, q, k, v, window);
        results.Add(new($"{raw} window {Window}", window,
            ReferenceBased.Window(raw, Window, wq, wk, wv)));
        return results;
    }
}

/// <summary>Random inputs of the L2 and L10 cases.</summary>
internal static class BasedInputs
{
    /// <summary><paramref name="n"/> values uniform in [-scale, scale).</summary>
    public static float[] Uniform(Random rng, long n, float scale = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    /// <summary>The float values widened to double.</summary>
    public static double[] Wide(float[] x) => Array.ConvertAll(x, e => (double)e);
}
