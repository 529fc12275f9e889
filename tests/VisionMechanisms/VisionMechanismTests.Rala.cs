using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.VisionMechanisms;

public abstract partial class VisionMechanismTests
{
    // ---------------------------------------------------------------- RALA

    /// <summary>Equals the materialized rank-augmented weights with a gate, GQA (qbar over the
    /// group) and MHA, lengths on and off the chunk, default and explicit scales.</summary>
    [Theory]
    [InlineData(1, 2, 1, 13, 4, 3, null)]
    [InlineData(2, 2, 2, 37, 8, 5, 0.7f)]
    [InlineData(1, 4, 2, 64, 3, 4, null)]
    [InlineData(1, 1, 1, 1, 2, 2, null)]
    [InlineData(1, 6, 2, 70, 5, 6, 2f)]
    public void RalaEqualsMaterialized(int b, int h, int hk, int n, int f, int dv, float? scale)
    {
        var s = new LinearAttentionShape(b, h, hk, n, f, dv);
        float[] q = Positive(11 + n, s.QueryLength), k = Positive(12 + n, s.KeyLength),
            v = Uniform(13 + n, s.ValueLength), gate = Uniform(14 + n, s.OutputLength);
        var o = new float[s.OutputLength];
        RalaAttention.Forward(Device, s, q, k, v, gate, o, scale);
        AssertClose(o, ReferenceRala.Forward(s, ToDouble(q), ToDouble(k), ToDouble(v),
            ToDouble(gate), scale ?? 1 / Math.Sqrt(f)), Atol, Rtol, "RALA vs materialized");
    }

    /// <summary>The coefficients sum to N; without a gate the rows sum to 1 (V = ones gives
    /// ones); with scale 0 every alpha is 1 and RALA is division-normalized linear attention
    /// times the gate.</summary>
    [Fact]
    public void RalaCoefficientsAndReductions()
    {
        var s = new LinearAttentionShape(1, 2, 1, 29, 4, 3);
        float[] q = Positive(15, s.QueryLength), k = Positive(16, s.KeyLength),
            v = Uniform(17, s.ValueLength), gate = Uniform(18, s.OutputLength);
        var alpha = ReferenceRala.Alphas(s, ToDouble(q), ToDouble(k), 0.5);
        Assert.Equal(29, alpha.Sum(), 1e-9);
        var ones = new float[s.ValueLength];
        Array.Fill(ones, 1f);
        var o = new float[s.OutputLength];
        RalaAttention.Forward(Device, s, q, k, ones, ReadOnlySpan<float>.Empty, o);
        Assert.All(o, x => Assert.Equal(1f, x, 1e-4f));
        RalaAttention.Forward(Device, s, q, k, v, gate, o, 0f);
        var linear = new float[s.OutputLength];
        ChunkedLinearAttention.Forward(Device, s, q, k, v, ReadOnlySpan<float>.Empty, linear,
            new LinearAttentionOptions { Normalize = true });
        for (int e = 0; e < linear.Length; e++) linear[e] *= gate[e];
        AssertClose(o, linear, 1e-6, 1e-4, "scale 0 vs normalized linear");
    }

    /// <summary>Numerical rank of a (rows, cols) matrix: Gaussian elimination with partial
    /// pivoting, pivots below tol times the largest entry count as zero.</summary>
    private static int Rank(float[] m, int rows, int cols, double tol = 1e-4)
    {
        var a = new double[rows, cols];
        double max = 0;
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) max = Math.Max(max, Math.Abs(a[r, c] = m[r * cols + c]));
        int rank = 0;
        for (int c = 0; c < cols && rank < rows; c++)
        {
            int pivot = rank;
            for (int r = rank + 1; r < rows; r++)
                if (Math.Abs(a[r, c]) > Math.Abs(a[pivot, c])) pivot = r;
            if (Math.Abs(a[pivot, c]) <= tol * max) continue;
            for (int x = 0; x < cols; x++) (a[rank, x], a[pivot, x]) = (a[pivot, x], a[rank, x]);
            for (int r = rank + 1; r < rows; r++)
            {
                double factor = a[r, c] / a[rank, c];
                for (int x = c; x < cols; x++) a[r, x] -= factor * a[rank, x];
            }
            rank++;
        }
        return rank;
    }

    /// <summary>The paper's low-rank dilemma: a head's (N, Dv) output of division-normalized
    /// linear attention has rank at most F; RALA's (alphas and the element-wise gate) reaches
    /// full rank Dv &gt; F.</summary>
    [Fact]
    public void RalaRaisesTheOutputRank()
    {
        var s = new LinearAttentionShape(1, 1, 1, 24, 2, 6);
        float[] q = Positive(19, s.QueryLength), k = Positive(20, s.KeyLength),
            v = Uniform(21, s.ValueLength), gate = Uniform(22, s.OutputLength);
        var linear = new float[s.OutputLength];
        ChunkedLinearAttention.Forward(Device, s, q, k, v, ReadOnlySpan<float>.Empty, linear,
            new LinearAttentionOptions { Normalize = true });
        var o = new float[s.OutputLength];
        RalaAttention.Forward(Device, s, q, k, v, gate, o);
        Assert.True(Rank(linear, 24, 6) <= 2, $"linear rank {Rank(linear, 24, 6)}");
        Assert.Equal(6, Rank(o, 24, 6));
    }

    /// <summary>Bad lengths, a non-finite scale and overlapping output throw naming the
    /// argument, before anything is written.</summary>
    [Fact]
    public void RalaValidates()
    {
        var s = new LinearAttentionShape(1, 2, 1, 5, 3, 2);
        float[] q = new float[s.QueryLength], k = new float[s.KeyLength],
            v = new float[s.ValueLength], o = new float[s.OutputLength],
            g = new float[s.OutputLength];
        Array.Fill(o, 7f);
        Assert.Throws<ArgumentException>("query",
            () => RalaAttention.Forward(Device, s, q.AsSpan(1), k, v, g, o));
        Assert.Throws<ArgumentException>("key",
            () => RalaAttention.Forward(Device, s, q, k.AsSpan(1), v, g, o));
        Assert.Throws<ArgumentException>("value",
            () => RalaAttention.Forward(Device, s, q, k, v.AsSpan(1), g, o));
        Assert.Throws<ArgumentException>("gate",
            () => RalaAttention.Forward(Device, s, q, k, v, g.AsSpan(1), o));
        Assert.Throws<ArgumentException>("output",
            () => RalaAttention.Forward(Device, s, q, k, v, g, o.AsSpan(1)));
        Assert.Throws<ArgumentException>("scale",
            () => RalaAttention.Forward(Device, s, q, k, v, g, o, float.NaN));
        Assert.Throws<ArgumentException>("output",
            () => RalaAttention.Forward(Device, s, q, k, v, o, o));
        Assert.All(o, x => Assert.Equal(7f, x));
    }
}
