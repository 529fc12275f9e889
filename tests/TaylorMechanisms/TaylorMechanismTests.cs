using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.TaylorMechanisms;

/// <summary>
/// BASED (L2) and Fastmax (L10) on one device (a subclass per backend) against their fp64
/// references and the papers' testable properties: the feature maps' dot products are the
/// score polynomials, the chunked forms equal the naive quadratic forms and the recurrence,
/// a window of at least N keys is exact causal softmax. Small shapes: the ILGPU subclass
/// emulates every kernel thread by thread.
/// </summary>
public abstract class TaylorMechanismTests
{
    /// <summary>The device under test.</summary>
    protected abstract ComputeDevice Device { get; }

    private const double Atol = 2e-5, Rtol = 2e-4;

    // ---------------------------------------------------------------- feature maps

    /// <summary>BASED's map: phi(q) . phi(k) = 1 + s + s^2 / 2 with s = q . k / sqrt(d'), for
    /// every pair of rows (the map computed on the device, the dot in double).</summary>
    [Theory]
    [InlineData(4)]
    [InlineData(16)]
    public void TaylorMapDotIsTheTaylorKernel(int d)
    {
        const int rows = 6;
        var x = Uniform(200 + d, rows * d, 1.5f);
        int f = BasedAttention.Features(d);
        var phi = new float[rows * f];
        FeatureMapping.Apply(Device, default(TaylorExpMap), 1, 1, rows, d, x, phi);
        var wide = ToDouble(x);
        for (int a = 0; a < rows; a++)
        for (int b = 0; b < rows; b++)
        {
            double dot = 0;
            for (int i = 0; i < f; i++) dot += (double)phi[a * f + i] * phi[b * f + i];
            double expected = ReferenceBased.TaylorKernel(wide.AsSpan(a * d, d),
                wide.AsSpan(b * d, d));
            Assert.True(Math.Abs(dot - expected) <= 1e-5 * (1 + Math.Abs(expected)),
                $"rows {a}, {b}: phi . phi = {dot}, 1 + s + s^2/2 = {expected}");
        }
    }

    /// <summary>Fastmax's map: phi(q) . phi(k) = f(q~ . k~), the order's polynomial of the
    /// normalized rows' dot product; a constant row maps to [1, 0, ...].</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void CenteredPolynomialMapDotIsTheScorePolynomial(int order)
    {
        const int rows = 6, d = 5;
        var x = Uniform(210 + order, rows * d, 2f);
        for (int i = 0; i < d; i++) x[(rows - 1) * d + i] = 0.75f; // a constant row
        var map = new CenteredPolynomialMap(order);
        int f = map.Features(d);
        var phi = new float[rows * f];
        FeatureMapping.Apply(Device, map, 1, 1, rows, d, x, phi);
        var wide = ToDouble(x);
        for (int a = 0; a < rows; a++)
        for (int b = 0; b < rows; b++)
        {
            double dot = 0;
            for (int i = 0; i < f; i++) dot += (double)phi[a * f + i] * phi[b * f + i];
            var qa = ReferenceCenteredPolynomial.Normalize(wide.AsSpan(a * d, d));
            var kb = ReferenceCenteredPolynomial.Normalize(wide.AsSpan(b * d, d));
            double s = 0;
            for (int i = 0; i < d; i++) s += qa[i] * kb[i];
            Assert.InRange(s, -1 - 1e-12, 1 + 1e-12);
            Assert.Equal(ReferenceCenteredPolynomial.Score(s, order), dot, 1e-5);
        }
        Assert.Equal(1f, phi[(rows - 1) * f]);
        for (int i = 1; i < f; i++) Assert.Equal(0f, phi[(rows - 1) * f + i]);
    }

    // ---------------------------------------------------------------- BASED linear

    /// <summary>Chunked == recurrent == naive quadratic, in fp64 for the two references and
    /// within float tolerance for the kernel, for chunk sizes 1, 16, larger than N and the
    /// default, at a length that is not a multiple of the chunk, with GQA.</summary>
    [Theory]
    [InlineData(1, 2, 1, 37, 4, 3, 1)]
    [InlineData(2, 2, 2, 37, 4, 5, 16)]
    [InlineData(1, 4, 2, 21, 3, 4, 64)]
    [InlineData(1, 2, 1, 29, 8, 2, null)]
    public void BasedLinearEqualsNaiveAndRecurrence(int b, int h, int hk, int n, int d, int dv,
        int? chunk)
    {
        var raw = new AttentionShape(b, h, hk, n, n, d, dv);
        var (q, k, v) = Inputs(raw, 300 + n + d, 1f);
        var output = RunBased(raw, q, k, v, chunk);
        var naive = ReferenceBased.Linear(raw, ToDouble(q), ToDouble(k), ToDouble(v));
        var recurrent = ReferenceBased.LinearRecurrent(raw, ToDouble(q), ToDouble(k),
            ToDouble(v));
        for (int i = 0; i < naive.Length; i++)
            Assert.True(Math.Abs(naive[i] - recurrent[i]) <= 1e-12 * (1 + Math.Abs(naive[i])),
                $"fp64 naive {naive[i]} vs recurrence {recurrent[i]} at {i}");
        AssertClose(output, naive, Atol, Rtol, $"BASED linear chunk {chunk}");
    }

    /// <summary>A prefill, then one token per call through a state (the recurrent decode),
    /// equals one full call.</summary>
    [Fact]
    public void BasedLinearDecodesThroughState()
    {
        const int n = 9, d = 4, dv = 3;
        var raw = new AttentionShape(1, 2, 1, n, n, d, dv);
        var (q, k, v) = Inputs(raw, 320, 1f);
        var full = RunBased(raw, q, k, v, null);
        using var state = new LinearAttentionState(Device, 1, 1, BasedAttention.Features(d), dv);
        var stepped = new float[raw.OutputLength];
        foreach (var (from, count) in new[] { (0, 5), (5, 1), (6, 1), (7, 1), (8, 1) })
        {
            var part = raw with { SeqQ = count, SeqK = count };
            var o = RunBased(part, Rows(q, 2, n, d, from, count), Rows(k, 1, n, d, from, count),
                Rows(v, 1, n, dv, from, count), null, state);
            for (int hh = 0; hh < 2; hh++)
                Array.Copy(o, hh * count * dv, stepped, (hh * n + from) * dv, count * dv);
        }
        Assert.Equal(n, state.Tokens);
        AssertClose(stepped, ToDouble(full), 1e-5, 1e-4, "decode vs full");
    }

    // ---------------------------------------------------------------- BASED window

    /// <summary>A window of at least N keys is exact causal softmax (the independent
    /// reference with a causal mask); a shorter one is the fp64 windowed softmax and differs
    /// from causal softmax.</summary>
    [Theory]
    [InlineData(1, 2, 1, 23, 8, 4)]
    [InlineData(2, 4, 2, 40, 16, 8)]
    public void BasedWindowIsWindowedSoftmax(int b, int h, int hk, int n, int d, int dv)
    {
        var raw = new AttentionShape(b, h, hk, n, n, d, dv);
        var (q, k, v) = Inputs(raw, 330 + n, 1.5f);
        var causal = ReferenceAttention.Forward(raw, q, k, v, default(NoScore),
            default(CausalMask), new AttentionOptions { QueryPosition = 0 }).Output;
        foreach (int window in new[] { n, n + 5 })
        {
            var o = new float[raw.OutputLength];
            BasedAttention.Window(Device, raw, window, q, k, v, o);
            AssertClose(o, causal, Atol, Rtol, $"window {window} >= N vs causal softmax");
        }
        const int w = 6;
        var windowed = new float[raw.OutputLength];
        BasedAttention.Window(Device, raw, w, q, k, v, windowed);
        AssertClose(windowed, ReferenceBased.Window(raw, w, ToDouble(q), ToDouble(k),
            ToDouble(v)), Atol, Rtol, $"window {w}");
        double change = 0;
        for (int i = 0; i < causal.Length; i++)
            change = Math.Max(change, Math.Abs(windowed[i] - causal[i]));
        Assert.True(change > 1e-2, $"a window of {w} keys changed the output by only {change}");
    }

    // ---------------------------------------------------------------- Fastmax

    /// <summary>The factorized O(N) evaluation equals the explicit O(N^2) one in fp64, orders 1
    /// and 2, causal (several chunk sizes) and not, with GQA.</summary>
    [Theory]
    [InlineData(2, false, null)]
    [InlineData(2, true, 1)]
    [InlineData(2, true, 16)]
    [InlineData(2, true, 64)]
    [InlineData(1, false, null)]
    [InlineData(1, true, 5)]
    [InlineData(1, true, null)]
    public void CenteredPolynomialEqualsExplicitEvaluation(int order, bool causal, int? chunk)
    {
        var raw = new AttentionShape(2, 4, 2, 37, 37, 6, 5);
        var (q, k, v) = Inputs(raw, 340 + order, 1f);
        var output = RunCenteredPolynomial(raw, order, q, k, v, causal, chunk);
        AssertClose(output, ReferenceCenteredPolynomial.Attention(raw, order, ToDouble(q), ToDouble(k),
            ToDouble(v), causal), Atol, Rtol, $"centered polynomial order {order} causal {causal}");
    }

    /// <summary>With V = I the outputs are the weight rows: non-negative, summing to 1, zero
    /// above the diagonal when causal; and shifting or scaling a query row (which the
    /// normalization removes) leaves them unchanged.</summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    public void CenteredPolynomialWeightsAreRowStochasticAndNormalizationInvariant(int order, bool causal)
    {
        const int n = 11, d = 4;
        var raw = new AttentionShape(1, 1, 1, n, n, d, n);
        var (q, k, _) = Inputs(raw, 350, 1f);
        var identity = new float[n * n];
        for (int i = 0; i < n; i++) identity[i * n + i] = 1f;
        var weights = RunCenteredPolynomial(raw, order, q, k, identity, causal, null);
        for (int r = 0; r < n; r++)
        {
            double sum = 0;
            for (int j = 0; j < n; j++)
            {
                float w = weights[r * n + j];
                Assert.True(w >= -1e-6f, $"w[{r}, {j}] = {w} < 0");
                if (causal && j > r) Assert.Equal(0f, w);
                sum += w;
            }
            Assert.Equal(1.0, sum, 1e-5);
        }
        var shifted = Array.ConvertAll(q, x => 3f * x + 0.5f);
        var again = RunCenteredPolynomial(raw, order, shifted, k, identity, causal, null);
        AssertClose(again, ToDouble(weights), 1e-5, 1e-4, "3 q + 0.5 vs q");
    }

    // ---------------------------------------------------------------- validation

    /// <summary>Bad calls throw an ArgumentException naming the argument before anything is
    /// written.</summary>
    [Fact]
    public void ValidationNamesTheArgumentBeforeWriting()
    {
        var raw = new AttentionShape(1, 2, 1, 5, 5, 4, 3);
        var (q, k, v) = Inputs(raw, 360, 1f);
        var shape = Mapped(raw, BasedAttention.Features(4));
        var output = new float[raw.OutputLength];
        var shortQ = q.AsSpan(1).ToArray();
        Bad("query", "expected 40", output,
            () => BasedAttention.Linear(Device, shape, 4, shortQ, k, v, output));
        Bad("value", "valueDim 3", output,
            () => BasedAttention.Linear(Device, shape, 4, q, k, v.AsSpan(2).ToArray(), output));
        Bad("output", "output has", output,
            () => BasedAttention.Linear(Device, shape, 4, q, k, v, output.AsSpan(1)));
        Bad("shape", "Features", output,
            () => BasedAttention.Linear(Device, shape with { Features = 20 }, 4, q, k, v,
                output));
        Bad("featureDim", "positive", output,
            () => BasedAttention.Linear(Device, shape, 0, q, k, v, output));
        Bad("shape", "KvHeads", output,
            () => BasedAttention.Linear(Device, shape with { KvHeads = 3 }, 4, q, k, v,
                output));
        Bad("chunkSize", "chunkSize", output,
            () => BasedAttention.Linear(Device, shape, 4, q, k, v, output, chunkSize: 0));
        using (var wrong = new LinearAttentionState(Device, 1, 1, 5, 3))
            Bad("state", "features", output,
                () => BasedAttention.Linear(Device, shape, 4, q, k, v, output, wrong));
        Bad("window", "positive", output,
            () => BasedAttention.Window(Device, raw, 0, q, k, v, output));
        Bad("shape", "SeqQ", output,
            () => BasedAttention.Window(Device, raw with { SeqK = 6 }, 4, q, k, v, output));
        Bad("key", "", output,
            () => BasedAttention.Window(Device, raw, 4, q, shortQ, v, output));
        var fast = Mapped(raw, CenteredPolynomialAttention.Features(4, 2));
        Bad("order", "1 or 2", output,
            () => CenteredPolynomialAttention.Forward(Device, fast, 4, 3, q, k, v, output));
        Bad("shape", "makes 5 (1 + d)", output,
            () => CenteredPolynomialAttention.Forward(Device, fast, 4, 1, q, k, v, output));
        Bad("headDim", "positive", output,
            () => CenteredPolynomialAttention.Forward(Device, fast, 0, 2, q, k, v, output));
        Bad("key", "kvHeads 1", output,
            () => CenteredPolynomialAttention.Forward(Device, fast, 4, 2, q, shortQ, v, output));
        using (var state = new LinearAttentionState(Device, 1, 1, fast.Features, 3))
            Bad("state", "non-causal", output,
                () => CenteredPolynomialAttention.Forward(Device, fast, 4, 2, q, k, v, output,
                    causal: false, state: state));
        Assert.Throws<ArgumentException>("order", () => CenteredPolynomialAttention.Features(4, 0));
        Assert.NotNull(default(CenteredPolynomialMap).ParameterError());
    }

    private const float Sentinel = 12345f;

    private static void Bad(string param, string message, float[] output, Action call)
    {
        Array.Fill(output, Sentinel);
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(param, e.ParamName);
        Assert.Contains(message, e.Message);
        Assert.All(output, x => Assert.Equal(Sentinel, x));
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>The mapped linear-attention shape of raw sizes with F features.</summary>
    internal static LinearAttentionShape Mapped(AttentionShape raw, int features) =>
        new(raw.Batch, raw.Heads, raw.KvHeads, raw.SeqQ, features, raw.ValueDim);

    /// <summary>Q, K, V of the raw shape, uniform in [-scale, scale).</summary>
    internal static (float[] Q, float[] K, float[] V) Inputs(AttentionShape s, int seed,
        float scale) =>
        (Uniform(seed, s.QueryLength, scale), Uniform(seed + 1000, s.KeyLength, scale),
         Uniform(seed + 2000, s.ValueLength));

    /// <summary>BASED's linear mixer through the span overload.</summary>
    internal float[] RunBased(AttentionShape raw, float[] q, float[] k, float[] v, int? chunk,
        LinearAttentionState? state = null)
    {
        var o = new float[raw.OutputLength];
        BasedAttention.Linear(Device, Mapped(raw, BasedAttention.Features(raw.HeadDim)),
            raw.HeadDim, q, k, v, o, state, chunk);
        return o;
    }

    /// <summary>Fastmax through the span overload.</summary>
    internal float[] RunCenteredPolynomial(AttentionShape raw, int order, float[] q, float[] k,
        float[] v, bool causal, int? chunk)
    {
        var o = new float[raw.OutputLength];
        CenteredPolynomialAttention.Forward(Device, Mapped(raw, CenteredPolynomialAttention.Features(raw.HeadDim,
            order)), raw.HeadDim, order, q, k, v, o, causal, chunkSize: chunk);
        return o;
    }
}

/// <summary>BASED and Fastmax on the host (SIMD and scalar loops).</summary>
public sealed class TaylorMechanismHostTests : TaylorMechanismTests
{
    /// <inheritdoc/>
    protected override ComputeDevice Device => ComputeDevice.Host;

    /// <summary>The host takes any chunk size, larger than the device's tile too.</summary>
    [Fact]
    public void HostTakesChunksLargerThanTheDeviceTile()
    {
        var raw = new AttentionShape(1, 2, 2, 70, 70, 3, 2);
        var (q, k, v) = Inputs(raw, 370, 1f);
        AssertClose(RunBased(raw, q, k, v, 100), ReferenceBased.Linear(raw, ToDouble(q),
            ToDouble(k), ToDouble(v)), Atol, Rtol, "chunk 100");
        AssertClose(RunCenteredPolynomial(raw, 2, q, k, v, true, 100), ReferenceCenteredPolynomial.Attention(raw, 2,
            ToDouble(q), ToDouble(k), ToDouble(v), true), Atol, Rtol, "chunk 100");
    }

    private const double Atol = 2e-5, Rtol = 2e-4;
}
