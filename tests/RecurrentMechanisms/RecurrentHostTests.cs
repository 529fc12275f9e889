using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Devices;
using Managed.Kernels.Recurrent;
using Managed.Kernels.Reference;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.RecurrentMechanisms;

/// <summary>
/// Mega's EMA and layer and Titans' linear memory on the host against their fp64 references,
/// and the papers' properties: the EMA's recurrence equals its convolution, a chunk of the
/// whole sequence is full Mega (and smaller chunks are not), Titans' chunk 1 is the
/// token-by-token recurrence (and larger chunks differ from it), a state carries a sequence
/// across calls.
/// </summary>
public sealed class RecurrentHostTests
{
    private static ComputeDevice Host => ComputeDevice.Host;

    // ---------------------------------------------------------------- EMA

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 33, 5, 3)]
    [InlineData(1, 64, 16, 16)]
    public void EmaMatchesRecurrence(int batch, int length, int dim, int emaDims)
    {
        RecurrentChecks.EmaMatchesRecurrence(Host, new(batch, length, dim, emaDims), 10);
        RecurrentChecks.EmaMatchesRecurrence(Host, new(batch, length, dim, emaDims), 11, false);
    }

    /// <summary>The fp64 recurrence equals the causal convolution with the EMA's kernel (the
    /// released code's FFT form), and the library's kernel K equals the reference's.</summary>
    [Property(MaxTest = 40)]
    public Property EmaRecurrenceEqualsConvolution() =>
        Prop.ForAll(Gen.Choose(1, 40).ToArbitrary(), Gen.Choose(1, 6).ToArbitrary(),
            Gen.Choose(0, 1 << 20).ToArbitrary(), (n, m, seed) =>
        {
            var s = new EmaShape(2, n, 3, m);
            var (x, alpha, delta, beta, eta, omega) = RecurrentData.Ema(s, seed);
            var rec = ReferenceMega.EmaRecurrence(s, ToDouble(x), ToDouble(alpha),
                ToDouble(delta), ToDouble(beta), ToDouble(eta), ToDouble(omega));
            var conv = ReferenceMega.EmaConvolution(s, ToDouble(x), ToDouble(alpha),
                ToDouble(delta), ToDouble(beta), ToDouble(eta), ToDouble(omega));
            for (int i = 0; i < rec.Length; i++)
                Assert.True(Math.Abs(rec[i] - conv[i]) <= 1e-12 + 1e-10 * Math.Abs(rec[i]),
                    $"[{i}] {rec[i]} vs {conv[i]}");
            // The host EMA of a unit impulse at t = 0 is the kernel K (omega = 0).
            var kernel = new double[(long)s.Dim * n];
            MultiDimensionalEma.ConvolutionKernel(s, alpha, delta, beta, eta, kernel);
            var impulse = new float[s.SequenceLength];
            for (int c = 0; c < s.Dim; c++) impulse[c] = 1f;
            var y = new float[s.SequenceLength];
            MultiDimensionalEma.Forward(Host, s, impulse, alpha, delta, beta, eta, [], y);
            for (int c = 0; c < s.Dim; c++)
                for (int t = 0; t < n; t++)
                    Assert.True(Math.Abs(y[t * s.Dim + c] - kernel[c * n + t])
                        <= 1e-6 + 1e-4 * Math.Abs(kernel[c * n + t]), $"K[{c},{t}]");
        });

    /// <summary>Damping 1 and delta 1 with beta = eta = 1 make h_t = x_t: the EMA of one
    /// dim is the identity (plus omega x).</summary>
    [Fact]
    public void EmaWithoutMemoryIsTheIdentityPlusResidual()
    {
        var s = new EmaShape(1, 9, 4, 1);
        var x = Uniform(5, s.SequenceLength);
        var ones = Enumerable.Repeat(1f, 4).ToArray();
        var omega = new[] { 0f, 1f, -1f, 0.5f };
        var y = new float[s.SequenceLength];
        MultiDimensionalEma.Forward(Host, s, x, ones, ones, ones, ones, omega, y);
        for (int i = 0; i < y.Length; i++)
            Assert.Equal(x[i] * (1 + omega[i % 4]), y[i], 6);
    }

    // ---------------------------------------------------------------- Mega

    [Theory]
    [InlineData(1, 1, 4, 4, 4, 2, 1)]
    [InlineData(2, 37, 12, 8, 16, 4, 16)]
    [InlineData(1, 20, 6, 5, 7, 3, 4)]
    [InlineData(1, 20, 6, 5, 7, 3, 1)]
    [InlineData(2, 23, 8, 4, 8, 2, 23)]
    [InlineData(1, 10, 8, 4, 8, 2, 64)]
    public void MegaMatchesReference(int batch, int length, int dim, int z, int h, int m,
        int chunk) =>
        RecurrentChecks.MegaMatchesReference(Host, new(batch, length, dim, z, h, m), chunk, 20);

    /// <summary>A chunk of the whole sequence (or more) is full Mega: it equals the
    /// unchunked reference, and any smaller chunk differs from it (the property can fail).
    /// </summary>
    [Fact]
    public void ChunkOfTheWholeSequenceIsFullMega()
    {
        var s = new MegaShape(2, 24, 8, 6, 8, 3);
        var w = RecurrentData.Mega(s, 30, s.Length - 1);
        var x = Uniform(31, s.SequenceLength);
        var full = ReferenceMega.Layer(s, x, w, null);
        foreach (int chunk in new[] { 24, 100 })
        {
            var y = new float[s.SequenceLength];
            MegaAttention.Forward(Host, s, x, w, y, chunk);
            AssertClose(y, full, 5e-5, 5e-4, $"chunk {chunk}");
        }
        var chunked = new float[s.SequenceLength];
        MegaAttention.Forward(Host, s, x, w, chunked, 8);
        double diff = 0;
        for (int i = 0; i < full.Length; i++) diff = Math.Max(diff, Math.Abs(chunked[i] - full[i]));
        Assert.True(diff > 1e-3, $"chunk 8 equals full Mega (max diff {diff})");
    }

    /// <summary>Causal: changing the last token leaves every earlier output unchanged.
    /// </summary>
    [Fact]
    public void MegaIsCausal()
    {
        var s = new MegaShape(1, 19, 6, 4, 6, 2);
        var w = RecurrentData.Mega(s, 40, 7);
        var x = Uniform(41, s.SequenceLength);
        var a = new float[s.SequenceLength];
        var b = new float[s.SequenceLength];
        MegaAttention.Forward(Host, s, x, w, a, 8);
        for (int c = 0; c < s.Dim; c++) x[(s.Length - 1) * s.Dim + c] += 1f;
        MegaAttention.Forward(Host, s, x, w, b, 8);
        int before = (s.Length - 1) * s.Dim;
        Assert.Equal(a.AsSpan(0, before).ToArray(), b.AsSpan(0, before).ToArray());
        Assert.NotEqual(a[before], b[before]);
    }

    // ---------------------------------------------------------------- Titans

    [Theory]
    [InlineData(1, 1, 1, 1, 1, 1)]
    [InlineData(2, 2, 45, 8, 6, 16)]
    [InlineData(1, 3, 17, 5, 7, 4)]
    [InlineData(1, 1, 12, 16, 16, 12)]
    [InlineData(1, 2, 9, 4, 4, 100)]
    public void TitansMatchesChunkedReference(int batch, int heads, int length, int dk, int dv,
        int chunk) =>
        RecurrentChecks.TitansMatchesChunkedReference(Host, new(batch, heads, length, dk, dv),
            chunk, 50);

    /// <summary>Random shapes and chunks: the chunked memory equals the chunk-b definition,
    /// and chunk 1 the token-by-token recurrence.</summary>
    [Property(MaxTest = 40)]
    public Property TitansChunkedEqualsDefinition() =>
        Prop.ForAll(
            (from b in Gen.Choose(1, 2) from h in Gen.Choose(1, 2) from n in Gen.Choose(1, 40)
             from dk in Gen.Choose(1, 8) from dv in Gen.Choose(1, 8)
             from chunk in Gen.Elements(1, 2, 3, 8, 16, 64)
             select (new TitansShape(b, h, n, dk, dv), chunk)).ToArbitrary(),
            Gen.Choose(0, 1 << 20).ToArbitrary(), (c, seed) =>
            {
                RecurrentChecks.TitansMatchesChunkedReference(Host, c.Item1, c.Item2, seed);
                RecurrentChecks.TitansChunkOneIsRecurrence(Host, c.Item1, seed);
            });

    [Fact]
    public void TitansChunkOneIsTheRecurrence() =>
        RecurrentChecks.TitansChunkOneIsRecurrence(Host, new(2, 2, 33, 6, 5), 60);

    /// <summary>The chunked form is a different model from the recurrence (gradients at the
    /// chunk's start): chunk 8 differs from chunk 1 (the property test can fail).</summary>
    [Fact]
    public void LargerChunksDifferFromTheRecurrence()
    {
        var s = new TitansShape(1, 1, 24, 6, 5);
        var a = RecurrentData.Titans(s, 61);
        var y1 = new float[s.ValueLength];
        var y8 = new float[s.ValueLength];
        TitansMemory.Forward(Host, s, a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha, y1, 1);
        TitansMemory.Forward(Host, s, a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha, y8, 8);
        // The first token of every chunk sees the same memory; later tokens do not.
        double diff = 0;
        for (int i = s.ValueDim; i < y1.Length; i++) diff = Math.Max(diff, Math.Abs(y1[i] - y8[i]));
        Assert.True(diff > 1e-4, $"chunk 8 equals chunk 1 (max diff {diff})");
        Assert.Equal(y1.AsSpan(0, s.ValueDim).ToArray(), y8.AsSpan(0, s.ValueDim).ToArray());
    }

    [Theory]
    [InlineData(1, 10)]
    [InlineData(4, 12)]
    [InlineData(16, 16)]
    public void TitansStateContinuesAcrossCalls(int chunk, int split) =>
        RecurrentChecks.TitansStateContinues(Host, new(2, 2, 37, 6, 5), chunk, split, 70);

    /// <summary>theta = 0, alpha = 0 and S = 0: nothing is written or forgotten, so every
    /// read is the initial memory, y_t = W q_t.</summary>
    [Fact]
    public void ZeroLearningRateReadsTheInitialMemory()
    {
        var s = new TitansShape(1, 1, 7, 3, 2);
        var a = RecurrentData.Titans(s, 80);
        var zeros = new float[s.GateLength];
        var state = new float[s.StateLength];
        var w = Uniform(81, 6);
        w.CopyTo(state, 0);
        var y = new float[s.ValueLength];
        TitansMemory.Forward(Host, s, a.Query, a.Key, a.Value, zeros, a.Eta, zeros, y, 4, state);
        for (int t = 0; t < s.Length; t++)
            for (int i = 0; i < 2; i++)
            {
                double e = 0;
                for (int x = 0; x < 3; x++) e += w[i * 3 + x] * a.Query[t * 3 + x];
                Assert.Equal(e, y[t * 2 + i], 5);
            }
    }

    // ---------------------------------------------------------------- Titans, MLP memory

    [Theory]
    [InlineData(1, 1, 1, 1, 1, 1, 1)]
    [InlineData(2, 2, 29, 6, 10, 5, 8)]
    [InlineData(1, 2, 17, 4, 3, 7, 1)]
    [InlineData(1, 1, 12, 5, 8, 4, 100)]
    public void TitansMlpMatchesReference(int batch, int heads, int length, int dk, int dh,
        int dv, int chunk) =>
        RecurrentChecks.TitansMlpMatchesReference(Host,
            new(batch, heads, length, dk, dh, dv), chunk, 90);

    [Theory]
    [InlineData(1, 7)]
    [InlineData(4, 8)]
    public void TitansMlpStateContinuesAcrossCalls(int chunk, int split) =>
        RecurrentChecks.TitansMlpStateContinues(Host, new(2, 1, 21, 5, 6, 4), chunk, split, 91);

    /// <summary>The MLP memory's W1 = 0 start has no gradient (SiLU(0) = 0): the paper's
    /// learned M_0 is required, so an empty initial state is rejected.</summary>
    [Fact]
    public void TitansMlpRequiresAnInitialMemory()
    {
        var s = new TitansMlpShape(1, 1, 4, 2, 3, 2);
        var a = RecurrentData.Titans(new(1, 1, 4, 2, 2), 92);
        var y = new float[s.ValueLength];
        var e = Assert.Throws<ArgumentException>(() => TitansMlpMemory.Forward(Host, s,
            a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha, y, 2, default));
        Assert.Equal("initialState", e.ParamName);
        Assert.Contains("expected 24", e.Message);
    }

    // ---------------------------------------------------------------- Titans MAG

    [Theory]
    [InlineData(1, 1, 1, 4, 3, 2, 0, 1, 1)]
    [InlineData(2, 2, 37, 8, 6, 5, 4, 8, 8)]
    [InlineData(1, 2, 30, 5, 4, 6, 0, 100, 3)]
    [InlineData(1, 1, 25, 4, 4, 4, 25, 2, 16)]
    public void TitansMagMatchesReference(int batch, int heads, int length, int d, int dk,
        int dv, int persistent, int window, int chunk) =>
        RecurrentChecks.TitansMagMatchesReference(Host,
            new(batch, heads, length, d, dk, dv, persistent, window), chunk, 140);

    /// <summary>Memory off (theta = 0: the memory reads 0, sigmoid(0) = 1/2): MAG is its
    /// windowed attention halved.</summary>
    [Fact]
    public void TitansMagWithoutMemoryIsTheWindowedAttention() =>
        RecurrentChecks.TitansMagMatchesReference(Host, new(1, 2, 21, 6, 4, 5, 3, 5), 4, 141,
            memoryOff: true);
}
