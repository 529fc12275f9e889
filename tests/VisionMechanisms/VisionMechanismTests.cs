using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.VisionMechanisms;

/// <summary>
/// The vision linear mechanisms (MALA L7, RALA L8, L2ViT L9, InLine's local term L6) against
/// their fp64 materialized references and the papers' testable properties, on one device (a
/// subclass per backend). Tiny shapes: the ILGPU subclass emulates every kernel thread by
/// thread. Tolerance: |actual - expected| &lt;= atol + rtol |expected|.
/// </summary>
public abstract partial class VisionMechanismTests
{
    /// <summary>The device under test.</summary>
    protected abstract ComputeDevice Device { get; }

    private const double Atol = 2e-5, Rtol = 2e-4;

    /// <summary>elu(x) + 1 of seeded uniform x: positive features.</summary>
    internal static float[] Positive(int seed, long length, float scale = 1f)
    {
        var x = Uniform(seed, length, scale);
        for (long i = 0; i < length; i++) x[i] = x[i] > 0 ? x[i] + 1 : MathF.Exp(x[i]);
        return x;
    }

    /// <summary>An identity V (batch, kvHeads, N, N): the output rows are the weight rows.
    /// </summary>
    internal static float[] IdentityValues(int items, int n)
    {
        var v = new float[items * n * n];
        for (int it = 0; it < items; it++)
        for (int j = 0; j < n; j++) v[(it * n + j) * n + j] = 1f;
        return v;
    }

    private static double Entropy(ReadOnlySpan<float> row)
    {
        double h = 0;
        foreach (float p in row) h -= p * Math.Log(p);
        return h;
    }

    // ---------------------------------------------------------------- MALA

    /// <summary>Equals the materialized magnitude-aware weights, GQA and MHA, lengths on and
    /// off the chunk.</summary>
    [Theory]
    [InlineData(1, 2, 1, 13, 4, 3)]
    [InlineData(2, 2, 2, 37, 8, 5)]
    [InlineData(1, 4, 2, 64, 3, 4)]
    [InlineData(1, 1, 1, 1, 2, 2)]
    [InlineData(1, 2, 2, 70, 5, 6)]
    public void MalaEqualsMaterialized(int b, int h, int hk, int n, int f, int dv)
    {
        var s = new LinearAttentionShape(b, h, hk, n, f, dv);
        float[] q = Positive(1 + n, s.QueryLength), k = Positive(2 + n, s.KeyLength),
            v = Uniform(3 + n, s.ValueLength);
        var o = new float[s.OutputLength];
        MalaAttention.Forward(Device, s, q, k, v, o);
        AssertClose(o, ReferenceMala.Forward(s, ToDouble(q), ToDouble(k), ToDouble(v)), Atol,
            Rtol, "MALA vs materialized");
    }

    /// <summary>Rows sum to 1 (V = ones gives ones) and the weights read with V = I equal the
    /// reference's.</summary>
    [Fact]
    public void MalaRowsSumToOne()
    {
        var s = new LinearAttentionShape(1, 2, 1, 21, 4, 21);
        float[] q = Positive(5, s.QueryLength), k = Positive(6, s.KeyLength);
        var w = new float[s.OutputLength];
        MalaAttention.Forward(Device, s, q, k, IdentityValues(1, 21), w);
        AssertClose(w, ReferenceMala.Weights(s, ToDouble(q), ToDouble(k)), Atol, Rtol,
            "weights");
        var ones = new float[s.ValueLength];
        Array.Fill(ones, 1f);
        var o = new float[s.OutputLength];
        MalaAttention.Forward(Device, s, q, k, ones, o);
        Assert.All(o, x => Assert.Equal(1f, x, 1e-4f));
    }

    /// <summary>Scaling phi(q) sharpens MALA's rows (entropy falls while the weights stay
    /// positive) but leaves division-normalized linear attention unchanged.</summary>
    [Fact]
    public void MalaSharpensWithQueryMagnitudeWhereNormalizedDoesNot()
    {
        const int n = 24;
        var s = new LinearAttentionShape(1, 1, 1, n, 4, n);
        float[] q = Positive(7, s.QueryLength, 0.3f), k = Positive(8, s.KeyLength);
        var v = IdentityValues(1, n);
        double[] previous = new double[n];
        float[] normalizedFirst = [];
        foreach (float c in new[] { 0.05f, 0.1f, 0.2f })
        {
            var qc = Array.ConvertAll(q, x => x * c);
            var w = new float[s.OutputLength];
            MalaAttention.Forward(Device, s, qc, k, v, w);
            var normalized = new float[s.OutputLength];
            ChunkedLinearAttention.Forward(Device, s, qc, k, v, ReadOnlySpan<float>.Empty,
                normalized, new LinearAttentionOptions { Normalize = true });
            if (normalizedFirst.Length == 0) normalizedFirst = normalized;
            else AssertClose(normalized, normalizedFirst, 1e-6, 1e-4, "normalized invariant");
            for (int i = 0; i < n; i++)
            {
                var row = w.AsSpan(i * n, n);
                foreach (float x in row) Assert.True(x > 0f, $"weight {x} at c = {c}");
                double hRow = Entropy(row);
                if (c > 0.05f) Assert.True(hRow < previous[i], $"row {i}: {hRow} >= {previous[i]}");
                previous[i] = hRow;
            }
        }
    }

    /// <summary>Bad lengths and overlapping output throw naming the argument, before anything is
    /// written.</summary>
    [Fact]
    public void MalaValidates()
    {
        var s = new LinearAttentionShape(1, 2, 1, 5, 3, 2);
        float[] q = new float[s.QueryLength], k = new float[s.KeyLength],
            v = new float[s.ValueLength], o = new float[s.OutputLength];
        Array.Fill(o, 7f);
        Assert.Throws<ArgumentException>("query",
            () => MalaAttention.Forward(Device, s, q.AsSpan(1), k, v, o));
        Assert.Throws<ArgumentException>("key",
            () => MalaAttention.Forward(Device, s, q, new float[1], v, o));
        Assert.Throws<ArgumentException>("value",
            () => MalaAttention.Forward(Device, s, q, k, v.AsSpan(1), o));
        Assert.Throws<ArgumentException>("output",
            () => MalaAttention.Forward(Device, s, q, k, v, o.AsSpan(1)));
        Assert.Throws<ArgumentException>("shape",
            () => MalaAttention.Forward(Device, s with { KvHeads = 3 }, q, k, v, o));
        var all = new float[s.QueryLength + s.OutputLength];
        Assert.Throws<ArgumentException>("output", () => MalaAttention.Forward(Device, s,
            all.AsSpan(0, (int)s.QueryLength), k, v, all.AsSpan(1, (int)s.OutputLength)));
        Assert.All(o, x => Assert.Equal(7f, x));
    }
}

/// <summary>The vision mechanisms on the host.</summary>
public sealed class VisionMechanismHostTests : VisionMechanismTests
{
    /// <inheritdoc/>
    protected override ComputeDevice Device => ComputeDevice.Host;

    /// <summary>The registry's vision entries pass their check cases for more seeds than the
    /// registry tests' one (check itself draws seed 17).</summary>
    [Theory]
    [InlineData("mala")]
    [InlineData("rala")]
    [InlineData("l2vit")]
    [InlineData("inline-local")]
    public void RegistryEntriesPassForSeveralSeeds(string name)
    {
        var mechanism = MechanismRegistry.All.Single(m => m.Name == name);
        Assert.Equal(name == "inline-local" ? "L6" : name == "mala" ? "L7"
            : name == "rala" ? "L8" : "L9", mechanism.CatalogId);
        foreach (int seed in new[] { 1, 17, 12345 })
            foreach (var r in mechanism.Run(Device, seed))
            {
                var (worst, pass) = r.Verdict();
                Assert.True(pass, $"{name} {r.Label} seed {seed}: worst {worst:E2}");
            }
    }
}
