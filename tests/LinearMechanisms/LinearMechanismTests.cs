using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Variants;
using Xunit;
using static Managed.Kernels.Reference.ReferenceLinearMechanisms;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.LinearMechanisms;

/// <summary>
/// Lightning, Hedgehog, InLine and Flow attention against their fp64 materialized references
/// and the papers' testable properties, on one device (a subclass per backend). Tiny shapes
/// (N &lt;= 40, dims &lt;= 8, B H &lt;= 4): the ILGPU subclass emulates every kernel thread by
/// thread.
/// </summary>
public abstract class LinearMechanismTests
{
    /// <summary>The device under test.</summary>
    protected abstract ComputeDevice Device { get; }

    private const double Atol = 2e-5, Rtol = 2e-4;

    // ---------------------------------------------------------------- Lightning

    /// <summary>Equals the naive decayed O(N^2) form and the token-by-token recurrence, for
    /// every chunk size (inside-chunk quadratic form and cross-chunk state agree).</summary>
    [Theory]
    [InlineData(1, 2, 1, 13, 4, 3, null)]
    [InlineData(2, 2, 2, 37, 8, 5, 1)]
    [InlineData(1, 2, 2, 29, 3, 4, 5)]
    [InlineData(1, 1, 1, 40, 2, 2, 16)]
    public void LightningEqualsNaiveAndRecurrence(int b, int h, int hk, int n, int f, int dv,
        int? chunk)
    {
        var s = new LinearAttentionShape(b, h, hk, n, f, dv);
        var (q, k, v) = Inputs(s, 10 + n, f, 0.5f);
        var decay = LightningAttention.Decays(hk);
        var output = new float[s.OutputLength];
        LightningAttention.Forward(Device, s, q, k, v, decay, output, chunkSize: chunk);
        var naive = Lightning(s, ToDouble(q), ToDouble(k), ToDouble(v), decay);
        var recurrence = LightningRecurrence(s, ToDouble(q), ToDouble(k), ToDouble(v), decay);
        AssertClose(Array.ConvertAll(recurrence, x => (float)x), naive, 1e-6, 1e-6,
            "naive vs recurrence");
        AssertClose(output, naive, Atol, Rtol, "Lightning vs naive");
    }

    /// <summary>A prefill then single-token calls through a state equal one full call.
    /// </summary>
    [Fact]
    public void LightningDecodesThroughState()
    {
        var s = new LinearAttentionShape(1, 2, 2, 11, 4, 3);
        var (q, k, v) = Inputs(s, 20, 4, 0.5f);
        var decay = LightningAttention.Decays(2);
        var full = new float[s.OutputLength];
        LightningAttention.Forward(Device, s, q, k, v, decay, full);
        using var state = new LinearAttentionState(Device, 1, 2, 4, 3);
        var stepped = new float[s.OutputLength];
        int prefill = 6;
        Step(0, prefill);
        for (int t = prefill; t < s.Length; t++) Step(t, 1);
        Assert.Equal(s.Length, state.Tokens);
        AssertClose(stepped, full, 1e-5, 1e-4, "decode vs full");

        void Step(int from, int count)
        {
            var part = s with { Length = count };
            var o = new float[part.OutputLength];
            LightningAttention.Forward(Device, part, Rows(q, 2, s.Length, 4, from, count),
                Rows(k, 2, s.Length, 4, from, count), Rows(v, 2, s.Length, 3, from, count),
                decay, o, state);
            for (int hh = 0; hh < 2; hh++)
                Array.Copy(o, hh * count * 3, stepped, (hh * s.Length + from) * 3, count * 3);
        }
    }

    // ---------------------------------------------------------------- Hedgehog

    /// <summary>Hedgehog (separate query and key maps, GQA) equals normalized attention over the
    /// fp64 maps, causal and not.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void HedgehogMatchesReference(bool causal)
    {
        const int d = 4, m = 3;
        var s = new LinearAttentionShape(2, 2, 1, 17, 2 * m, 3);
        var (q, k, v) = Inputs(s, 30, d, 1f);
        var wq = Uniform(31, s.Heads * m * (d + 1), 0.5f);
        var wk = Uniform(32, s.KvHeads * m * (d + 1), 0.5f);
        var output = RunHedgehog(s, d, m, wq, wk, q, k, v, causal);
        var phiQ = HedgehogFeatures(s.Batch * s.Heads * s.Length, s.Heads, s.Length, d, m,
            ToDouble(q), wq);
        var phiK = HedgehogFeatures(s.Batch * s.KvHeads * s.Length, s.KvHeads, s.Length, d, m,
            ToDouble(k), wk);
        AssertClose(output, Normalized(s, phiQ, phiK, ToDouble(v), causal), Atol, Rtol,
            "Hedgehog");
    }

    /// <summary>With V = I (value dim = N) the output rows are the weight rows: non-negative,
    /// summing to 1, zero above the diagonal when causal.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void HedgehogWeightsAreNonNegativeAndRowStochastic(bool causal)
    {
        const int d = 4, m = 2, n = 9;
        var s = new LinearAttentionShape(1, 2, 1, n, 2 * m, n);
        var (q, k, _) = Inputs(s, 40, d, 1f);
        var wq = Uniform(41, s.Heads * m * (d + 1), 0.7f);
        var wk = Uniform(42, s.KvHeads * m * (d + 1), 0.7f);
        var weights = RunHedgehog(s, d, m, wq, wk, q, k, Identity(n), causal);
        for (int r = 0; r < s.Heads * n; r++)
        {
            double sum = 0;
            for (int j = 0; j < n; j++)
            {
                float w = weights[r * n + j];
                Assert.True(w >= 0f, $"w[{r}, {j}] = {w} < 0");
                if (causal && j > r % n) Assert.Equal(0f, w);
                sum += w;
            }
            Assert.Equal(1.0, sum, 1e-5);
        }
    }

    /// <summary>Causal Hedgehog through a state (a prefill, then one token per call) equals one
    /// full call: the state carries the mapped keys' sums.</summary>
    [Fact]
    public void HedgehogDecodesThroughState()
    {
        const int d = 3, m = 2, n = 8;
        var s = new LinearAttentionShape(1, 2, 1, n, 2 * m, 2);
        var (q, k, v) = Inputs(s, 45, d, 1f);
        var wq = Uniform(46, s.Heads * m * (d + 1), 0.5f);
        var wk = Uniform(47, s.KvHeads * m * (d + 1), 0.5f);
        var full = RunHedgehog(s, d, m, wq, wk, q, k, v, true);
        using var state = new LinearAttentionState(Device, 1, 1, 2 * m, 2);
        var stepped = new float[s.OutputLength];
        foreach (var (from, count) in new[] { (0, 5), (5, 1), (6, 1), (7, 1) })
        {
            var part = s with { Length = count };
            var o = RunHedgehog(part, d, m, wq, wk, Rows(q, 2, n, d, from, count),
                Rows(k, 1, n, d, from, count), Rows(v, 1, n, 2, from, count), true,
                state: state);
            for (int h = 0; h < 2; h++)
                Array.Copy(o, h * count * 2, stepped, (h * n + from) * 2, count * 2);
        }
        Assert.Equal(n, state.Tokens);
        AssertClose(stepped, full, 1e-5, 1e-4, "decode vs full");
    }

    // ---------------------------------------------------------------- InLine

    /// <summary>InLine (signed features, GQA) equals the materialized subtractive weights.
    /// </summary>
    [Theory]
    [InlineData(1, 2, 1, 23, 5, 3)]
    [InlineData(2, 2, 2, 8, 8, 6)]
    public void InLineMatchesReference(int b, int h, int hk, int n, int f, int dv)
    {
        var s = new LinearAttentionShape(b, h, hk, n, f, dv);
        var (q, k, v) = Inputs(s, 50 + n, f, 0.4f);
        var output = new float[s.OutputLength];
        InLineAttention.Forward(Device, s, q, k, v, output);
        AssertClose(output, InLine(s, ToDouble(q), ToDouble(k), ToDouble(v)), Atol, Rtol,
            "InLine");
    }

    /// <summary>The paper's point: InLine's rows sum to 1 and scaling q by c changes them
    /// (injective), while division-normalized linear attention gives q and c q the same
    /// weights.</summary>
    [Fact]
    public void InLineRowsSumToOneAndScalingQueryChangesWeights()
    {
        const int n = 10, f = 4;
        var s = new LinearAttentionShape(1, 1, 1, n, f, n);
        var q = Positive(60, s.QueryLength);
        var k = Positive(61, s.KeyLength);
        var q2 = Array.ConvertAll(q, x => 2f * x);
        var v = Identity(n);
        var w1 = new float[s.OutputLength];
        var w2 = new float[s.OutputLength];
        InLineAttention.Forward(Device, s, q, k, v, w1);
        InLineAttention.Forward(Device, s, q2, k, v, w2);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(1.0, w1.AsSpan(i * n, n).ToArray().Sum(x => (double)x), 1e-5);
            Assert.Equal(1.0, w2.AsSpan(i * n, n).ToArray().Sum(x => (double)x), 1e-5);
        }
        double change = w1.Zip(w2, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(change > 1e-2, $"InLine weights of q and 2q differ by only {change}");
        var d1 = new float[s.OutputLength];
        var d2 = new float[s.OutputLength];
        var normalized = new LinearAttentionOptions { Normalize = true };
        ChunkedLinearAttention.Forward(Device, s, q, k, v, ReadOnlySpan<float>.Empty, d1,
            normalized);
        ChunkedLinearAttention.Forward(Device, s, q2, k, v, ReadOnlySpan<float>.Empty, d2,
            normalized);
        AssertClose(d2, ToDouble(d1), 1e-6, 1e-5, "division-normalized q vs 2q");
    }

    // ---------------------------------------------------------------- Flow

    /// <summary>Flow-Attention equals the materialized flow network, outputs and conserved
    /// flows.</summary>
    [Theory]
    [InlineData(1, 2, 19, 4, 3)]
    [InlineData(2, 2, 7, 8, 5)]
    [InlineData(1, 1, 1, 3, 2)]
    public void FlowMatchesReference(int b, int h, int n, int f, int dv)
    {
        var s = new LinearAttentionShape(b, h, h, n, f, dv);
        var (q, k, v) = Inputs(s, 70 + n, f, 1f);
        var output = new float[s.OutputLength];
        var conserved = new float[2 * b * h * n];
        FlowAttention.Forward(Device, s, q, k, v, output, conserved);
        var (expected, flows) = Flow(s, ToDouble(q), ToDouble(k), ToDouble(v));
        AssertClose(output, expected, Atol, Rtol, "Flow output");
        AssertClose(conserved, flows, 1e-5, 1e-5, "Ihat, Ohat");
    }

    /// <summary>Causal Flow-Attention (the released Flow_Attention_Causal without its
    /// epsilons) equals its materialized prefix flow network, outputs and conserved flows,
    /// lengths across the chunk edge included.</summary>
    [Theory]
    [InlineData(1, 2, 19, 4, 3)]
    [InlineData(2, 2, 7, 8, 5)]
    [InlineData(1, 1, 1, 3, 2)]
    [InlineData(1, 1, 70, 3, 2)]
    public void CausalFlowMatchesReference(int b, int h, int n, int f, int dv)
    {
        var s = new LinearAttentionShape(b, h, h, n, f, dv);
        var (q, k, v) = Inputs(s, 170 + n, f, 2f);
        var output = new float[s.OutputLength];
        var conserved = new float[2 * b * h * n];
        FlowAttention.Forward(Device, s, q, k, v, output, conserved, causal: true);
        var (expected, flows) = Managed.Kernels.Reference.ReferenceCausalFlow.Forward(s,
            ToDouble(q), ToDouble(k), ToDouble(v));
        AssertClose(output, expected, Atol, Rtol, "causal Flow output");
        AssertClose(conserved, flows, 1e-5, 1e-5, "causal Ihat, Ohat");
    }

    /// <summary>Causal: changing the last tokens' q, k and v leaves every earlier output as
    /// it was; the first token reads itself only (Ihat_0 = 1, competition 1), so
    /// R_0 = sigmoid(1) v_0.</summary>
    [Fact]
    public void CausalFlowReadsNoLaterToken()
    {
        var s = new LinearAttentionShape(1, 2, 2, 12, 4, 3);
        var (q, k, v) = Inputs(s, 190, 4, 2f);
        var first = new float[s.OutputLength];
        FlowAttention.Forward(Device, s, q, k, v, first, causal: true);
        for (int h = 0; h < 2; h++)
        for (int i = 9; i < 12; i++)
        {
            for (int x = 0; x < 4; x++)
            {
                q[(h * 12 + i) * 4 + x] += 3f;
                k[(h * 12 + i) * 4 + x] -= 2f;
            }
            for (int c = 0; c < 3; c++) v[(h * 12 + i) * 3 + c] *= -5f;
        }
        var second = new float[s.OutputLength];
        FlowAttention.Forward(Device, s, q, k, v, second, causal: true);
        for (int h = 0; h < 2; h++)
        {
            for (int i = 0; i < 9; i++)
            for (int c = 0; c < 3; c++)
                Assert.Equal(first[(h * 12 + i) * 3 + c], second[(h * 12 + i) * 3 + c], 1e-6f);
            Assert.NotEqual(first[(h * 12 + 11) * 3], second[(h * 12 + 11) * 3]);
            for (int c = 0; c < 3; c++)
                Assert.Equal(v[h * 12 * 3 + c] / (1 + Math.Exp(-1)), second[h * 12 * 3 + c],
                    1e-5);
        }
    }

    /// <summary>The conservation identities: the conserved incoming flows of the sinks sum to
    /// the number of sources, the conserved outgoing flows of the sources to the number of
    /// sinks (each normalized flow carries exactly 1 unit).</summary>
    [Fact]
    public void FlowConservesFlow()
    {
        var s = new LinearAttentionShape(2, 2, 2, 13, 4, 2);
        var (q, k, v) = Inputs(s, 80, 4, 2f);
        var output = new float[s.OutputLength];
        var conserved = new float[2 * 4 * 13];
        FlowAttention.Forward(Device, s, q, k, v, output, conserved);
        for (int part = 0; part < 2; part++)
        for (int it = 0; it < 4; it++)
        {
            double sum = 0;
            for (int i = 0; i < 13; i++) sum += conserved[(part * 4 + it) * 13 + i];
            Assert.Equal(13.0, sum, 1e-4);
        }
    }

    // ---------------------------------------------------------------- validation

    /// <summary>A wrong length, a wrong head layout or a bad map throws ArgumentException
    /// naming the argument, and the output is not written.</summary>
    [Fact]
    public void ValidationNamesTheArgumentBeforeWriting()
    {
        var s = new LinearAttentionShape(1, 2, 1, 5, 4, 3);
        var (q, k, v) = Inputs(s, 90, 4, 1f);
        var output = new float[s.OutputLength];
        Array.Fill(output, float.NaN);
        var shortQ = q.AsSpan(1).ToArray();
        var decay = LightningAttention.Decays(1);
        Throws("query", () => LightningAttention.Forward(Device, s, shortQ, k, v, decay, output));
        Throws("decay", () => LightningAttention.Forward(Device, s, q, k, v, [1.5f], output));
        Throws("query", () => InLineAttention.Forward(Device, s, shortQ, k, v, output));
        Throws("value", () => InLineAttention.Forward(Device, s, q, k, v.AsSpan(1), output));
        Throws("output", () => InLineAttention.Forward(Device, s, q, k, v, output.AsSpan(1)));
        Throws("shape", () => FlowAttention.Forward(Device, s, q, k, v, output));
        var flat = new LinearAttentionShape(1, 2, 2, 5, 4, 3);
        var (fq, fk, fv) = Inputs(flat, 91, 4, 1f);
        Throws("key", () => FlowAttention.Forward(Device, flat, fq, fk.AsSpan(2), fv, output));
        Throws("conserved", () => FlowAttention.Forward(Device, flat, fq, fk, fv, output,
            new float[3]));
        // Hedgehog: raw rows of headDim 4, two units (features 4); the shape says 4 features.
        const int m = 2;
        var wq = Uniform(92, s.Heads * m * 5, 0.5f);
        var wk = Uniform(93, s.KvHeads * m * 5, 0.5f);
        Throws("query", () => RunHedgehog(s, 4, m, wq, wk, shortQ, k, v, false, output));
        Throws("queryMap", () => RunHedgehog(s, 4, m, wq.AsSpan(1).ToArray(), wk, q, k, v,
            false, output));
        Throws("keyMap", () => RunHedgehog(s, 4, m, wq, wq, q, k, v, false, output));
        Throws("queryMap", () => RunHedgehog(s with { Features = 6 }, 4, m, wq, wk, q, k, v,
            false, output));
        Throws("headDim", () => RunHedgehog(s, 0, m, wq, wk, q, k, v, false, output));
        Assert.All(output, x => Assert.True(float.IsNaN(x)));
    }

    private static void Throws(string name, Action call)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(name, e.ParamName);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Q (B, H, N, rowDim), K (B, Hk, N, rowDim), V (B, Hk, N, Dv), uniform.</summary>
    internal static (float[] Q, float[] K, float[] V) Inputs(LinearAttentionShape s, int seed,
        int rowDim, float scale) =>
        (Uniform(seed, (long)s.Batch * s.Heads * s.Length * rowDim, scale),
         Uniform(seed + 1000, (long)s.Batch * s.KvHeads * s.Length * rowDim, scale),
         Uniform(seed + 2000, s.ValueLength));

    /// <summary>Floats uniform in [0.1, 1.1).</summary>
    internal static float[] Positive(int seed, long length) =>
        Array.ConvertAll(Uniform(seed, length, 0.5f), x => x + 0.6f);

    /// <summary>V = I: an (n, n) identity (one KV head), so outputs are weight rows.</summary>
    internal static float[] Identity(int n)
    {
        var v = new float[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1f;
        return v;
    }

    /// <summary>Hedgehog through the span overload, with the maps' tables on the device's
    /// side.</summary>
    internal float[] RunHedgehog(LinearAttentionShape s, int d, int m, float[] wq, float[] wk,
        float[] q, float[] k, float[] v, bool causal, float[]? output = null,
        LinearAttentionState? state = null)
    {
        output ??= new float[s.OutputLength];
        var tq = new VariantTable<float>(wq);
        var tk = new VariantTable<float>(wk);
        if (Device.IsHost)
        {
            HedgehogAttention.Forward(Device, s, d, new HedgehogMap<HostTable<float>>(tq.Host, m),
                new HedgehogMap<HostTable<float>>(tk.Host, m), q, k, v, output, causal, state);
            return output;
        }
        using var bq = tq.Upload(Device.Accelerator!);
        using var bk = tk.Upload(Device.Accelerator!);
        HedgehogAttention.Forward(Device, s, d,
            new HedgehogMap<DeviceTable<float>>(new(bq.View.SubView(0, tq.Length)), m),
            new HedgehogMap<DeviceTable<float>>(new(bk.View.SubView(0, tk.Length)), m),
            q, k, v, output, causal, state);
        return output;
    }
}

/// <summary>The mechanisms on the host (SIMD and scalar loops).</summary>
public sealed class LinearMechanismHostTests : LinearMechanismTests
{
    /// <inheritdoc/>
    protected override ComputeDevice Device => ComputeDevice.Host;

    /// <summary>TransNormerLLM's decays: lambda_h = exp(-2^(-8 (h + 1) / H)), increasing in h,
    /// in (0, 1); deeper layers decay less, the last barely.</summary>
    [Fact]
    public void LightningDecaysFollowTheSlopes()
    {
        var d = LightningAttention.Decays(8);
        for (int h = 0; h < 8; h++)
        {
            Assert.Equal(Math.Exp(-Math.Pow(2, -(h + 1))), d[h], 1e-6);
            Assert.InRange(d[h], 0f, 1f);
        }
        var first = LightningAttention.Decays(4, 0, 3);
        var last = LightningAttention.Decays(4, 2, 3);
        var single = LightningAttention.Decays(4);
        for (int h = 0; h < 4; h++) Assert.Equal(single[h], first[h], 1e-4); // the code's +1e-5
        Assert.All(last, x => Assert.True(x > 0.9999f && x <= 1f));
        // Not a power of two: the slopes of 4 heads, then every other slope of 8 heads.
        var six = LightningAttention.Decays(6);
        double[] slopes = [.. Enumerable.Range(1, 4).Select(i => Math.Pow(2, -2.0 * i)),
            Math.Pow(2, -1), Math.Pow(2, -3)];
        for (int h = 0; h < 6; h++) Assert.Equal(Math.Exp(-slopes[h]), six[h], 1e-6);
        Assert.Throws<ArgumentException>("heads", () => LightningAttention.Decays(0));
        Assert.Throws<ArgumentException>("layer", () => LightningAttention.Decays(2, 3, 3));
    }
}
