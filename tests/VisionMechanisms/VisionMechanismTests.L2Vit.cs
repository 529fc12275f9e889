using Managed.Kernels.Attention;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.VisionMechanisms;

public abstract partial class VisionMechanismTests
{
    // ---------------------------------------------------------------- L2ViT

    private static float[] Relu(float[] x) => Array.ConvertAll(x, v => MathF.Max(v, 0f));

    private static L2VitLcmWeights Lcm(int seed, int kernel, int heads, int dim)
    {
        int conv = heads * dim * kernel * kernel, ch = heads * dim;
        var scale = Array.ConvertAll(Uniform(seed + 2, ch, 0.5f), x => x + 1f);
        return new L2VitLcmWeights(kernel, Uniform(seed, conv, 0.5f),
            Uniform(seed + 1, ch, 0.5f), scale, Uniform(seed + 3, ch, 0.5f),
            Uniform(seed + 4, conv, 0.5f), Uniform(seed + 5, ch, 0.5f));
    }

    /// <summary>The global mixer equals its materialized weights, with the authors' floor
    /// (clamping) and a floor below every denominator (plain normalization), GQA, lengths on
    /// and off the chunk.</summary>
    [Theory]
    [InlineData(1, 2, 1, 13, 4, 3, 100f)]
    [InlineData(2, 2, 2, 37, 8, 5, 1e-3f)]
    [InlineData(1, 4, 2, 64, 3, 4, 5f)]
    [InlineData(1, 2, 2, 70, 5, 6, 100f)]
    public void L2VitGlobalEqualsMaterialized(int b, int h, int hk, int n, int f, int dv,
        float floor)
    {
        var s = new LinearAttentionShape(b, h, hk, n, f, dv);
        float[] q = Relu(Uniform(21 + n, s.QueryLength, 3f)),
            k = Relu(Uniform(22 + n, s.KeyLength, 3f)), v = Uniform(23 + n, s.ValueLength),
            tau = Uniform(24 + n, h);
        var o = new float[s.OutputLength];
        L2VitAttention.Global(Device, s, q, k, v, tau, o, floor);
        AssertClose(o, ReferenceL2Vit.Global(s, ToDouble(q), ToDouble(k), ToDouble(v),
            ToDouble(tau), floor), Atol, Rtol, "L2ViT global vs materialized");
    }

    /// <summary>The local concentration module equals direct fp64 convolutions (kernels 1, 3,
    /// 7; grids smaller than the kernel included).</summary>
    [Theory]
    [InlineData(1, 2, 4, 5, 3, 3)]
    [InlineData(2, 1, 3, 3, 2, 7)]
    [InlineData(1, 3, 6, 2, 4, 1)]
    public void L2VitLocalConcentrationEqualsConvolutions(int b, int h, int height, int width,
        int dim, int kernel)
    {
        var lcm = Lcm(30 + kernel, kernel, h, dim);
        var x = Uniform(31, (long)b * h * height * width * dim, 2f);
        var o = new float[x.Length];
        L2VitAttention.LocalConcentration(Device, b, h, height, width, dim, x, lcm, o);
        AssertClose(o, ReferenceL2Vit.LocalConcentration(b, h, height, width, dim, ToDouble(x),
            lcm), 1e-5, 1e-4, "LCM vs fp64");
    }

    /// <summary>Global with LCM equals the global output plus the LCM of it.</summary>
    [Fact]
    public void L2VitGlobalWithLcmComposes()
    {
        var s = new LinearAttentionShape(1, 4, 2, 30, 4, 3);
        float[] q = Relu(Uniform(40, s.QueryLength, 3f)), k = Relu(Uniform(41, s.KeyLength, 3f)),
            v = Uniform(42, s.ValueLength), tau = Uniform(43, 4);
        var lcm = Lcm(44, 3, 4, 3);
        var o = new float[s.OutputLength];
        L2VitAttention.GlobalWithLcm(Device, s, 5, 6, q, k, v, tau, lcm, o);
        var a = ReferenceL2Vit.Global(s, ToDouble(q), ToDouble(k), ToDouble(v), ToDouble(tau),
            L2VitAttention.DefaultFloor);
        var local = ReferenceL2Vit.LocalConcentration(1, 4, 5, 6, 3, a, lcm);
        for (int e = 0; e < a.Length; e++) a[e] += local[e];
        AssertClose(o, a, Atol, Rtol, "global + LCM");
    }

    /// <summary>Window attention equals the dense softmax per window (grid sides on and off the
    /// window, GQA), is full attention when the window covers the grid, and a token's output
    /// ignores every token outside its window.</summary>
    [Theory]
    [InlineData(1, 2, 1, 6, 8, 2)]
    [InlineData(1, 4, 2, 9, 10, 4)]
    [InlineData(2, 2, 2, 5, 3, 7)]
    public void L2VitWindowIsExactWithinWindows(int b, int h, int hk, int height, int width,
        int window)
    {
        int n = height * width, d = 8, dv = 5;
        var s = new AttentionShape(b, h, hk, n, n, d, dv);
        float[] q = Uniform(50, s.QueryLength), k = Uniform(51, s.KeyLength),
            v = Uniform(52, s.ValueLength);
        var o = new float[s.OutputLength];
        L2VitAttention.Window(Device, s, height, width, window, q, k, v, o);
        AssertClose(o, ReferenceL2Vit.Window(b, h, hk, height, width, window, d, dv,
            ToDouble(q), ToDouble(k), ToDouble(v), 1 / Math.Sqrt(d)), Atol, Rtol,
            "window vs dense");
        if (window >= Math.Max(height, width))
            AssertClose(o, Attention(b, h, hk, n, n, d, dv, ToDouble(q), ToDouble(k),
                ToDouble(v), 1 / Math.Sqrt(d)), Atol, Rtol, "one window vs full");
        // Token 0's window is the top-left block: perturb every key and value outside it.
        var k2 = (float[])k.Clone();
        var v2 = (float[])v.Clone();
        for (int it = 0; it < b * hk; it++)
        for (int j = 0; j < n; j++)
        {
            if (j / width < window && j % width < window) continue;
            for (int x = 0; x < d; x++) k2[(it * n + j) * d + x] += 1f;
            for (int c = 0; c < dv; c++) v2[(it * n + j) * dv + c] -= 1f;
        }
        var o2 = new float[s.OutputLength];
        L2VitAttention.Window(Device, s, height, width, window, q, k2, v2, o2);
        for (int bh = 0; bh < b * h; bh++)
            Assert.Equal(o.AsSpan(bh * n * dv, dv).ToArray(), o2.AsSpan(bh * n * dv, dv).ToArray());
    }

    /// <summary>Bad sizes, lengths, weights and floors throw naming the argument, before
    /// anything is written.</summary>
    [Fact]
    public void L2VitValidates()
    {
        var s = new LinearAttentionShape(1, 2, 1, 6, 3, 2);
        float[] q = new float[s.QueryLength], k = new float[s.KeyLength],
            v = new float[s.ValueLength], o = new float[s.OutputLength], tau = new float[2];
        Array.Fill(o, 7f);
        var lcm = Lcm(60, 3, 2, 2);
        Assert.Throws<ArgumentException>("query",
            () => L2VitAttention.Global(Device, s, q.AsSpan(1), k, v, tau, o));
        Assert.Throws<ArgumentException>("temperature",
            () => L2VitAttention.Global(Device, s, q, k, v, tau.AsSpan(1), o));
        Assert.Throws<ArgumentException>("floor",
            () => L2VitAttention.Global(Device, s, q, k, v, tau, o, -1f));
        Assert.Throws<ArgumentException>("floor",
            () => L2VitAttention.Global(Device, s, q, k, v, tau, o, float.NaN));
        Assert.Throws<ArgumentException>("height",
            () => L2VitAttention.GlobalWithLcm(Device, s, 2, 2, q, k, v, tau, lcm, o));
        Assert.Throws<ArgumentException>("lcm", () => L2VitAttention.GlobalWithLcm(Device, s,
            2, 3, q, k, v, tau, lcm with { Kernel = 2 }, o));
        Assert.Throws<ArgumentException>("lcm", () => L2VitAttention.GlobalWithLcm(Device, s,
            2, 3, q, k, v, tau, lcm with { Shift = new float[3] }, o));
        Assert.Throws<ArgumentException>("lcm", () => L2VitAttention.GlobalWithLcm(Device, s,
            2, 3, q, k, v, tau, Lcm(61, 3, 2, 3), o));
        Assert.Throws<ArgumentException>("output",
            () => L2VitAttention.LocalConcentration(Device, 1, 2, 2, 3, 2, o, lcm, o));
        Assert.Throws<ArgumentException>("input",
            () => L2VitAttention.LocalConcentration(Device, 1, 2, 2, 3, 2, q, lcm, o));
        Assert.Throws<ArgumentException>("width",
            () => L2VitAttention.LocalConcentration(Device, 1, 2, 2, 0, 2, v, lcm, o));
        var a = new AttentionShape(1, 2, 1, 6, 6, 3, 2);
        Assert.Throws<ArgumentException>("window",
            () => L2VitAttention.Window(Device, a, 2, 3, 0, q, k, v, o));
        Assert.Throws<ArgumentException>("height",
            () => L2VitAttention.Window(Device, a, 3, 3, 2, q, k, v, o));
        Assert.All(o, x => Assert.Equal(7f, x));
    }
}
