using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.VisionMechanisms;

public abstract partial class VisionMechanismTests
{
    // ---------------------------------------------------------------- InLine local term

    /// <summary>InLine with its local term equals the materialized weights plus the direct
    /// convolution: class tokens, bias or none, kernels 1, 3, 5, GQA, lengths off the chunk.
    /// </summary>
    [Theory]
    [InlineData(1, 2, 2, 4, 5, 3, 1, false)]
    [InlineData(2, 2, 1, 6, 6, 3, 0, true)]
    [InlineData(1, 4, 2, 8, 9, 5, 2, true)]
    [InlineData(1, 1, 1, 3, 3, 1, 0, false)]
    public void InLineLocalEqualsMaterializedPlusConvolution(int b, int h, int hk, int height,
        int width, int kernel, int prefix, bool withBias)
    {
        var local = new InLineLocal(height, width, kernel, prefix);
        var s = new LinearAttentionShape(b, h, hk, prefix + height * width, 5, 4);
        float[] q = Uniform(70, s.QueryLength, 0.5f), k = Uniform(71, s.KeyLength, 0.5f),
            v = Uniform(72, s.ValueLength);
        long channels = (long)b * hk * s.ValueDim;
        float[] w = Uniform(73, channels * kernel * kernel),
            bias = withBias ? Uniform(74, channels) : [];
        var o = new float[s.OutputLength];
        InLineAttention.Forward(Device, s, local, q, k, v, w, bias, o);
        AssertClose(o, ReferenceInLineLocal.Forward(s, local, ToDouble(q), ToDouble(k),
            ToDouble(v), w, bias), Atol, Rtol, "InLine local vs fp64");
    }

    /// <summary>Zero weights leave InLine unchanged; the class tokens get no local term; a
    /// centre-only kernel of 1 adds V itself (rows still sum to 1 in the attention part).
    /// </summary>
    [Fact]
    public void InLineLocalReductions()
    {
        var local = new InLineLocal(3, 4, 3, 1);
        var s = new LinearAttentionShape(1, 2, 2, 13, 4, 3);
        float[] q = Uniform(80, s.QueryLength, 0.5f), k = Uniform(81, s.KeyLength, 0.5f),
            v = Uniform(82, s.ValueLength);
        var plain = new float[s.OutputLength];
        InLineAttention.Forward(Device, s, q, k, v, plain);
        var o = new float[s.OutputLength];
        InLineAttention.Forward(Device, s, local, q, k, v, new float[2 * 3 * 9], [], o);
        AssertClose(o, plain, 1e-7, 1e-6, "zero weights");
        var centre = new float[2 * 3 * 9];
        for (int c = 0; c < 6; c++) centre[c * 9 + 4] = 1f;
        InLineAttention.Forward(Device, s, local, q, k, v, centre, [], o);
        for (int hh = 0; hh < 2; hh++)
        for (int t = 0; t < 13; t++)
        for (int c = 0; c < 3; c++)
        {
            int e = (hh * 13 + t) * 3 + c;
            Assert.Equal(plain[e] + (t == 0 ? 0f : v[e]), o[e], 1e-5f);
        }
    }

    /// <summary>A grid that does not fit, an even kernel, wrong weights or bias, and an output
    /// overlapping the weights throw naming the argument, before anything is written.</summary>
    [Fact]
    public void InLineLocalValidates()
    {
        var s = new LinearAttentionShape(1, 2, 1, 7, 3, 2);
        var local = new InLineLocal(2, 3, 3, 1);
        float[] q = new float[s.QueryLength], k = new float[s.KeyLength],
            v = new float[s.ValueLength], o = new float[s.OutputLength], w = new float[2 * 9];
        Array.Fill(o, 7f);
        Assert.Throws<ArgumentException>("local", () => InLineAttention.Forward(Device, s,
            local with { Prefix = 0 }, q, k, v, w, [], o));
        Assert.Throws<ArgumentException>("local", () => InLineAttention.Forward(Device, s,
            local with { Kernel = 2 }, q, k, v, w, [], o));
        Assert.Throws<ArgumentException>("local", () => InLineAttention.Forward(Device, s,
            local with { Height = 0 }, q, k, v, w, [], o));
        Assert.Throws<ArgumentException>("weights", () => InLineAttention.Forward(Device, s,
            local, q, k, v, w.AsSpan(1), [], o));
        Assert.Throws<ArgumentException>("bias", () => InLineAttention.Forward(Device, s,
            local, q, k, v, w, new float[3], o));
        Assert.Throws<ArgumentException>("query", () => InLineAttention.Forward(Device, s,
            local, q.AsSpan(1), k, v, w, [], o));
        var all = new float[o.Length + w.Length];
        Assert.Throws<ArgumentException>("output", () => InLineAttention.Forward(Device, s,
            local, q, k, v, all.AsSpan(0, w.Length), [], all.AsSpan(1, o.Length)));
        Assert.All(o, x => Assert.Equal(7f, x));
    }
}
