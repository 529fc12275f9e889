using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;

namespace Managed.Bench;

/// <summary>
/// One benchmark configuration with its inputs: Q, K, V as (batch, heads, seq, headDim),
/// uniform in [-1, 1) from a fixed seed, so every implementation sees the same data.
/// </summary>
public sealed class AttentionCase
{
    public int Batch { get; }
    public int Heads { get; }
    public int SeqLen { get; }
    public int HeadDim { get; }
    public bool Causal { get; }

    // (batch, heads, seq, headDim) each
    public float[] Q { get; }
    public float[] K { get; }
    public float[] V { get; }

    public AttentionCase(int batch, int heads, int seqLen, int headDim, bool causal, int seed = 42)
    {
        (Batch, Heads, SeqLen, HeadDim, Causal) = (batch, heads, seqLen, headDim, causal);
        var rng = new Random(seed);
        Q = Random(rng, batch * heads * seqLen * headDim);
        K = Random(rng, Q.Length);
        V = Random(rng, Q.Length);
    }

    public AttentionShape Shape => AttentionShape.Self(Batch, Heads, SeqLen, HeadDim);

    /// <summary>4 B H N^2 D (two matmuls of 2 N^2 D each per head), halved under a causal mask.
    /// </summary>
    public double Flops => 4.0 * Batch * Heads * SeqLen * (double)SeqLen * HeadDim
        * (Causal ? 0.5 : 1.0);

    public string Name => $"N={SeqLen} D={HeadDim} {(Causal ? "causal" : "full")}";

    /// <summary>This project's kernel: FlashAttention.Forward with the given tuning.</summary>
    public void RunManaged(float[] output, AttentionTuning tuning)
    {
        var options = new AttentionOptions { Tuning = tuning };
        if (Causal)
            FlashAttention.Forward(ComputeDevice.Host, Shape, Q, K, V, output, default,
                default(NoScore), default(CausalMask), default(SoftmaxNormalizer), options);
        else
            FlashAttention.Forward(ComputeDevice.Host, Shape, Q, K, V, output, default,
                default(NoScore), default(NoMask), default(SoftmaxNormalizer), options);
    }

    /// <summary>(batch, heads, seq, headDim) to (batch, seq, heads, headDim).</summary>
    public static float[] ToBsnh(float[] bnsh, AttentionCase c) => Permute(bnsh, c, toBsnh: true);

    /// <summary>(batch, seq, heads, headDim) to (batch, heads, seq, headDim).</summary>
    public static float[] FromBsnh(float[] bsnh, AttentionCase c) =>
        Permute(bsnh, c, toBsnh: false);

    private static float[] Permute(float[] src, AttentionCase c, bool toBsnh)
    {
        var dst = new float[src.Length];
        int d = c.HeadDim;
        for (int b = 0; b < c.Batch; b++)
            for (int h = 0; h < c.Heads; h++)
                for (int n = 0; n < c.SeqLen; n++)
                {
                    long bnsh = (((long)b * c.Heads + h) * c.SeqLen + n) * d;
                    long bsnh = (((long)b * c.SeqLen + n) * c.Heads + h) * d;
                    Array.Copy(src, toBsnh ? bnsh : bsnh, dst, toBsnh ? bsnh : bnsh, d);
                }
        return dst;
    }

    /// <summary>max |a - b| over all elements; NaN anywhere counts as infinite.</summary>
    public static double MaxAbsDiff(float[] a, float[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException("Length mismatch.");
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double diff = Math.Abs((double)a[i] - b[i]);
            if (double.IsNaN(diff)) return double.PositiveInfinity;
            max = Math.Max(max, diff);
        }
        return max;
    }

    private static float[] Random(Random rng, int length)
    {
        var x = new float[length];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle() * 2f - 1f;
        return x;
    }
}
