using FsCheck;
using FsCheck.Fluent;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Xunit.Sdk;

namespace Managed.Tests.LinearAttention;

/// <summary>One linear-attention problem: a shape, the call's options, a decay (empty: none)
/// and the seed of its inputs (non-negative elu+1 features when normalized, so that every
/// denominator is a sum of positive weights; signed features otherwise, so that the raw sums
/// cancel).</summary>
public sealed record LinearCase(LinearAttentionShape Shape, bool Causal, bool Normalize,
    int? Chunk, float[] Decay, int Seed, int? Threads = null)
{
    /// <summary>The call's options.</summary>
    public LinearAttentionOptions Options => new()
    {
        Causal = Causal, Normalize = Normalize, ChunkSize = Chunk, MaxDegreeOfParallelism = Threads,
    };

    /// <summary>The case's inputs.</summary>
    public LinearInputs Inputs => LinearInputs.Make(Shape, Seed, positive: Normalize);

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Shape} causal={Causal} normalize={Normalize} chunk={Chunk?.ToString() ?? "default"} "
        + $"decay=[{string.Join(", ", Decay)}] threads={Threads?.ToString() ?? "all"} seed={Seed}";
}

/// <summary>phi(Q) (B, H, N, F), phi(K) (B, Hk, N, F) and V (B, Hk, N, Dv).</summary>
public sealed record LinearInputs(float[] Query, float[] Key, float[] Value)
{
    /// <summary>Inputs of <paramref name="shape"/> from <paramref name="seed"/>: V uniform in
    /// [-1, 1]; the features elu(x) + 1 of x uniform in [-1.5, 1.5] (in (0.22, 2.5)) when
    /// <paramref name="positive"/>, else uniform in [-1, 1].</summary>
    public static LinearInputs Make(LinearAttentionShape shape, int seed, bool positive)
    {
        var random = new Random(seed);
        float[] Features(long n) => positive
            ? LinearData.EluPlusOne(LinearData.Uniform(random, n, -1.5f, 1.5f))
            : LinearData.Uniform(random, n, -1f, 1f);
        var q = Features(shape.QueryLength);
        var k = Features(shape.KeyLength);
        return new LinearInputs(q, k, LinearData.Uniform(random, shape.ValueLength, -1f, 1f));
    }
}

/// <summary>Data, runs, slicing and the comparison rule of the linear-attention tests.</summary>
public static class LinearData
{
    /// <summary>fp32 unit roundoff, 2^-24.</summary>
    public const double Unit = 5.960464477539063e-8;

    /// <summary>Floats uniform in [lo, hi).</summary>
    public static float[] Uniform(Random random, long n, float lo, float hi)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)random.NextDouble();
        return x;
    }

    /// <summary>elu(x) + 1 elementwise, in double, rounded once.</summary>
    public static float[] EluPlusOne(float[] x) =>
        x.Select(v => (float)(v > 0 ? v + 1.0 : Math.Exp(v))).ToArray();

    /// <summary>|x| elementwise.</summary>
    public static float[] Abs(ReadOnlySpan<float> x)
    {
        var a = new float[x.Length];
        for (int i = 0; i < a.Length; i++) a[i] = Math.Abs(x[i]);
        return a;
    }

    /// <summary>
    /// The forward error budget of an fp32 chunked call relative to the magnitude of its
    /// terms (<see cref="Magnitude"/>): each output is a dot product over F features (the
    /// intra-chunk scores, the readout phi(q) S), plus a recursive sum over at most N keys
    /// (the state across chunks, the chunk's masked sum), each of whose terms carries a few
    /// roundings (the decay power exp(j ln lambda), the products); recursive summation of n
    /// terms is off by at most about n u times the sum of their magnitudes, so
    /// gamma = (2F + 2N + 32) u, at least <see cref="Support.Tolerance.Kernel"/>'s atol 1e-5
    /// (168 u). A worst-case (linear, not sqrt) bound: it does not hide a wrong weight, since
    /// one key's share of the magnitude is about 1/N, far above gamma.
    /// </summary>
    public static double Gamma(LinearAttentionShape shape) =>
        Math.Max(1e-5, (2.0 * shape.Features + 2.0 * shape.Length + 32) * Unit);

    /// <summary>
    /// The magnitude of each output's terms: the fp64 reference over |phi(Q)|, |phi(K)|, |V|
    /// (and |S|, |z|), i.e. sum_s lambda^(t-s) (|q_t| . |k_s|) |v_s|, divided by
    /// sum_s lambda^(t-s) |q_t| . |k_s| when normalized (for the non-negative features of the
    /// normalized cases that sum is the denominator itself, so the bound is relative to it).
    /// </summary>
    public static double[] Magnitude(LinearAttentionShape shape, LinearInputs x,
        ReadOnlySpan<float> decay, bool causal, bool normalize, ReadOnlySpan<float> initialS = default,
        ReadOnlySpan<float> initialZ = default) =>
        ReferenceLinearAttention.Forward(shape, Abs(x.Query), Abs(x.Key), Abs(x.Value), decay,
            causal, normalize, initialS.IsEmpty ? default : Abs(initialS),
            initialZ.IsEmpty ? default : Abs(initialZ));

    /// <summary>The fp64 reference of <paramref name="c"/>.</summary>
    public static double[] Reference(LinearCase c, LinearInputs x) =>
        ReferenceLinearAttention.Forward(c.Shape, x.Query, x.Key, x.Value, c.Decay, c.Causal,
            c.Normalize);

    /// <summary>The chunked call of <paramref name="c"/> on <paramref name="device"/>.</summary>
    public static float[] Run(ComputeDevice device, LinearCase c, LinearInputs x,
        LinearAttentionState? state = null)
    {
        var output = new float[c.Shape.OutputLength];
        ChunkedLinearAttention.Forward(device, c.Shape, x.Query, x.Key, x.Value, c.Decay, output,
            c.Options, state);
        return output;
    }

    /// <summary>
    /// Asserts |actual - expected| &lt;= factor (gamma M + max(1e-4, gamma) |expected|) for
    /// every element, M the element's <paramref name="magnitude"/>: the budget of
    /// <see cref="Gamma"/> on the terms plus the rtol 1e-4 of <see cref="Support.Tolerance.Kernel"/>
    /// (which also covers the relative error of a normalized call's denominator).
    /// <paramref name="factor"/> 2 compares two fp32 runs (each within one budget of the
    /// exact value).
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected,
        ReadOnlySpan<double> magnitude, double gamma, string what, object? context,
        double factor = 1)
    {
        if (actual.Length != expected.Length)
            throw new XunitException($"{what}: length {actual.Length}, expected {expected.Length}. {context}");
        int bad = 0, first = -1;
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double tol = factor * (gamma * magnitude[i] + Math.Max(1e-4, gamma) * Math.Abs(expected[i]));
            double diff = Math.Abs(actual[i] - expected[i]);
            if (!double.IsNaN(actual[i]) && diff <= tol) continue;
            if (bad++ == 0) first = i;
            worst = Math.Max(worst, double.IsNaN(diff) ? double.PositiveInfinity : diff / tol);
        }
        if (bad > 0)
            throw new XunitException(
                $"{what}: {bad} of {actual.Length} elements outside {factor} x (gamma {gamma:g3} M "
                + $"+ rtol |ref|); first at [{first}]: {actual[first]:R} vs {expected[first]:R} "
                + $"(M {magnitude[first]:g4}); worst |diff| / tol {worst:g4}. {context}");
    }

    /// <summary>The worst |actual - expected| / (gamma M + max(1e-4, gamma) |expected|).
    /// </summary>
    public static double WorstRatio(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected,
        ReadOnlySpan<double> magnitude, double gamma)
    {
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
            worst = Math.Max(worst, Math.Abs(actual[i] - expected[i])
                / (gamma * magnitude[i] + Math.Max(1e-4, gamma) * Math.Abs(expected[i])));
        return worst;
    }

    /// <summary>Widens floats to doubles.</summary>
    public static double[] Wide(ReadOnlySpan<float> x)
    {
        var w = new double[x.Length];
        for (int i = 0; i < w.Length; i++) w[i] = x[i];
        return w;
    }

    /// <summary>Tokens start .. start + count of each of <paramref name="rows"/> sequences of
    /// <paramref name="n"/> tokens of <paramref name="width"/> elements.</summary>
    public static float[] Tokens(ReadOnlySpan<float> x, int rows, int n, int width, int start,
        int count)
    {
        var part = new float[(long)rows * count * width];
        for (int r = 0; r < rows; r++)
            x.Slice((r * n + start) * width, count * width)
                .CopyTo(part.AsSpan(r * count * width, count * width));
        return part;
    }

    /// <summary>Writes <paramref name="part"/> (rows x count tokens) at tokens start ..
    /// start + count of <paramref name="target"/> (rows x n tokens).</summary>
    public static void Place(Span<float> target, ReadOnlySpan<float> part, int rows, int n,
        int width, int start, int count)
    {
        for (int r = 0; r < rows; r++)
            part.Slice(r * count * width, count * width)
                .CopyTo(target.Slice((r * n + start) * width, count * width));
    }

    /// <summary>Tokens start .. start + count of every tensor of <paramref name="x"/>.</summary>
    public static LinearInputs Tokens(LinearAttentionShape shape, LinearInputs x, int start,
        int count)
    {
        int n = shape.Length, f = shape.Features, dv = shape.ValueDim;
        return new LinearInputs(
            Tokens(x.Query, shape.Batch * shape.Heads, n, f, start, count),
            Tokens(x.Key, shape.Batch * shape.KvHeads, n, f, start, count),
            Tokens(x.Value, shape.Batch * shape.KvHeads, n, dv, start, count));
    }

    /// <summary>
    /// The state after tokens 0 .. count - 1 in fp64, summed directly:
    /// S = sum_s lambda^(count-1-s) phi(k_s) v_s^T (batch, kvHeads, features, valueDim) and
    /// z = sum_s lambda^(count-1-s) phi(k_s) (batch, kvHeads, features); with the magnitudes
    /// of their terms (the same sums over |phi(k)| and |v|, and over |phi(k)|).
    /// </summary>
    public static (double[] S, double[] Z, double[] SMagnitude, double[] ZMagnitude) DirectState(
        LinearAttentionShape shape, LinearInputs x, ReadOnlySpan<float> decay, int count)
    {
        int n = shape.Length, f = shape.Features, dv = shape.ValueDim;
        int items = shape.Batch * shape.KvHeads;
        var s = new double[shape.StateLength];
        var z = new double[(long)items * f];
        var m = new double[shape.StateLength];
        var mz = new double[(long)items * f];
        for (int item = 0; item < items; item++)
        {
            double lambda = decay.IsEmpty ? 1.0 : decay[item % shape.KvHeads];
            for (int t = 0; t < count; t++)
            {
                double w = Math.Pow(lambda, count - 1 - t);
                for (int a = 0; a < f; a++)
                {
                    double k = x.Key[(item * n + t) * f + a];
                    z[item * f + a] += w * k;
                    mz[item * f + a] += w * Math.Abs(k);
                    for (int c = 0; c < dv; c++)
                    {
                        double v = x.Value[(item * n + t) * dv + c];
                        s[(item * f + a) * dv + c] += w * k * v;
                        m[(item * f + a) * dv + c] += w * Math.Abs(k * v);
                    }
                }
            }
        }
        return (s, z, m, mz);
    }

    /// <summary>S and z of <paramref name="state"/>.</summary>
    public static (float[] S, float[] Z) Copy(LinearAttentionState state)
    {
        var s = new float[state.StateLength];
        var z = new float[state.NormalizerLength];
        state.CopyTo(s, z);
        return (s, z);
    }

    /// <summary>Decoding: every token of <paramref name="c"/> in its own call of length 1
    /// with <paramref name="state"/>, the outputs put back together.</summary>
    public static float[] Decode(ComputeDevice device, LinearCase c, LinearInputs x,
        LinearAttentionState state)
    {
        var shape = c.Shape;
        var step = shape with { Length = 1 };
        var output = new float[shape.OutputLength];
        var o = new float[step.OutputLength];
        for (int t = 0; t < shape.Length; t++)
        {
            var xt = Tokens(shape, x, t, 1);
            ChunkedLinearAttention.Forward(device, step, xt.Query, xt.Key, xt.Value, c.Decay, o,
                c.Options, state);
            Place(output, o, shape.Batch * shape.Heads, shape.Length, shape.ValueDim, t, 1);
        }
        return output;
    }

    // ------------------------------------------------------------------------------------
    // Generators.

    /// <summary>Lengths around the chunk edges (1, 3, 7 and the host's 64) and up to 100.
    /// </summary>
    private static readonly int[] EdgeLengths = [1, 2, 3, 6, 7, 8, 15, 63, 64, 65, 100];

    /// <summary>Random host cases: batch 1-2, heads 1/1, 2/1, 2/2, 4/2 (GQA and MQA), N up to
    /// 100 (edges half of the time), features and value dims below, at and above a SIMD width
    /// (1, 3, 8, 16, 17), chunk 1, 3, 7, 64, longer than N or the default, a decay per KV head
    /// from {0.5, 0.9, 0.99, 1} a third of the causal cases, 1 or all threads.</summary>
    public static Gen<LinearCase> HostCases { get; } =
        from batch in Gen.Choose(1, 2)
        from heads in Gen.Elements((1, 1), (2, 1), (2, 2), (4, 2))
        from n in Gen.Frequency((1, Gen.Elements(EdgeLengths)), (1, Gen.Choose(1, 100)))
        from f in Gen.Elements(1, 3, 8, 16, 17)
        from dv in Gen.Elements(1, 3, 8, 16, 17)
        from chunk in Gen.Elements<int?>(1, 3, 7, 64, 1000, null)
        from causal in Gen.Elements(true, true, false)
        from normalize in Gen.Elements(true, false)
        from decayed in Gen.Elements(false, false, true)
        from lambdas in Gen.ArrayOf(Gen.Elements(0.5f, 0.9f, 0.99f, 1f), heads.Item2)
        from threads in Gen.Elements<int?>(1, null)
        from seed in Gen.Choose(0, int.MaxValue)
        select new LinearCase(new LinearAttentionShape(batch, heads.Item1, heads.Item2, n, f, dv),
            causal, normalize, chunk, causal && decayed ? lambdas : [], seed, threads);
}
