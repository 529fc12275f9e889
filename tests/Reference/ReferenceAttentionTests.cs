using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Reference;

/// <summary>
/// The yardstick checked against arithmetic done by hand: tiny problems whose softmax can be
/// written in closed form. Every expected value below is derived in its comment.
/// </summary>
public sealed class ReferenceAttentionTests
{
    private static readonly AttentionOptions Unscaled = new() { Scale = 1f };

    /// <summary>
    /// q = [1], keys [0] and [1] (scale 1): logits 0 and 1, weights 1/(1+e) and e/(1+e).
    /// Values 2 and 4: O = (2 + 4e)/(1 + e); lse = log(1 + e).
    /// </summary>
    [Fact]
    public void OneQueryTwoKeys()
    {
        var shape = new AttentionShape(1, 1, 1, 1, 2, 1, 1);
        var (o, lse) = ReferenceAttention.Forward(shape, [1f], [0f, 1f], [2f, 4f], default(NoScore),
            default(NoMask), Unscaled);
        double e = Math.E;
        Assert.Equal((2 + 4 * e) / (1 + e), o[0], 12);
        Assert.Equal(Math.Log(1 + e), lse[0], 12);
    }

    /// <summary>
    /// D = 2, default scale 1/sqrt(2): q = [1, 1], k = [1, 1] and [-1, 1] give dots 2 and 0,
    /// logits sqrt(2) and 0. Values [1, 0] and [0, 1]: O = [w, 1 - w], w = e^sqrt2/(e^sqrt2 + 1).
    /// </summary>
    [Fact]
    public void DefaultScaleIsOneOverSqrtHeadDim()
    {
        var shape = new AttentionShape(1, 1, 1, 1, 2, 2, 2);
        var (o, lse) = ReferenceAttention.Forward(shape, [1f, 1f], [1f, 1f, -1f, 1f], [1f, 0f, 0f, 1f],
            default(NoScore), default(NoMask));
        double w = Math.Exp(Math.Sqrt(2)) / (Math.Exp(Math.Sqrt(2)) + 1);
        Assert.Equal(w, o[0], 12);
        Assert.Equal(1 - w, o[1], 12);
        Assert.Equal(Math.Log(Math.Exp(Math.Sqrt(2)) + 1), lse[0], 12);
    }

    /// <summary>
    /// Causal, bottom-right, seqQ = 2 &gt; seqK = 1: row 0 sits at position -1 and sees no key
    /// (O = 0, lse = -inf); row 1 sits at 0 and sees key 0 alone (O = v, lse = q1.k = 3 * 0.5).
    /// </summary>
    [Fact]
    public void CausalBottomRightMasksEarlyRows()
    {
        var shape = new AttentionShape(1, 1, 1, 2, 1, 1, 1);
        var (o, lse) = ReferenceAttention.Forward(shape, [1f, 3f], [0.5f], [7f], default(NoScore),
            default(CausalMask), Unscaled);
        Assert.Equal([0.0, 7.0], o);
        Assert.Equal(double.NegativeInfinity, lse[0]);
        Assert.Equal(1.5, lse[1], 12);
    }

    /// <summary>
    /// Causal, top-left, seqQ = seqK = 2, logits all 0 (q = 0): row 0 averages key 0 only
    /// (O = 10), row 1 averages keys 0 and 1 (O = (10 + 20)/2 = 15, lse = log 2).
    /// </summary>
    [Fact]
    public void CausalTopLeftIsLowerTriangular()
    {
        var shape = new AttentionShape(1, 1, 1, 2, 2, 1, 1);
        var (o, lse) = ReferenceAttention.Forward(shape, [0f, 0f], [1f, 1f], [10f, 20f], default(NoScore),
            default(CausalMask), Unscaled with { Alignment = QueryAlignment.TopLeft });
        Assert.Equal([10.0, 15.0], o);
        Assert.Equal(0.0, lse[0], 12);
        Assert.Equal(Math.Log(2), lse[1], 12);
    }

    /// <summary>
    /// GQA, 2 query heads on 1 KV head: head 0 (q = 0) gives equal weights, O = (1 + 3)/2 = 2;
    /// head 1 (q = ln 3, scale 1, keys [0] and [1]) gives logits 0 and ln 3, weights 1/4 and
    /// 3/4, O = 1/4 + 9/4 = 2.5, lse = log(1 + 3) = log 4.
    /// </summary>
    [Fact]
    public void GroupedQueryHeadsShareOneKvHead()
    {
        var shape = new AttentionShape(1, 2, 1, 1, 2, 1, 1);
        var (o, lse) = ReferenceAttention.Forward(shape, [0f, (float)Math.Log(3)], [0f, 1f], [1f, 3f],
            default(NoScore), default(NoMask), Unscaled);
        Assert.Equal(2.0, o[0], 12);
        Assert.Equal(2.5, o[1], 6);
        Assert.Equal(Math.Log(2), lse[0], 12);
        Assert.Equal(Math.Log(4), lse[1], 6);
    }

    /// <summary>
    /// ALiBi with 1 head: slope 2^-8. Query at position 1 (bottom-right, seqQ = 1, seqK = 2),
    /// logits 0: biases -1/256 (key 0) and 0 (key 1); O = (e^(-1/256) * 0 + 1 * 1)/(e^(-1/256) + 1).
    /// </summary>
    [Fact]
    public void AlibiAddsSlopeTimesDistance()
    {
        Assert.Equal(1.0 / 256, new AlibiScore(1).Slope(0), 12);
        Assert.Equal(0.25, new AlibiScore(8).Slope(1), 12);
        var shape = new AttentionShape(1, 1, 1, 1, 2, 1, 1);
        var (o, lse) = ReferenceAttention.Forward(shape, [0f], [1f, 1f], [0f, 1f], new AlibiScore(1),
            default(NoMask), Unscaled);
        double a = Math.Exp(-1.0 / 256);
        Assert.Equal(1 / (a + 1), o[0], 6);
        Assert.Equal(Math.Log(a + 1), lse[0], 6);
    }

    /// <summary>
    /// Soft-cap 1 on logits 0 and 100 (q = 10, keys 0 and 10): capped to 0 and tanh(100) = 1
    /// (to fp32), so the weights are 1/(1+e) and e/(1+e) rather than ~0 and ~1.
    /// </summary>
    [Fact]
    public void SoftcapBoundsTheLogits()
    {
        var shape = new AttentionShape(1, 1, 1, 1, 2, 1, 1);
        var (o, lse) = ReferenceAttention.Forward(shape, [10f], [0f, 10f], [0f, 1f], new SoftcapScore(1f),
            default(NoMask), Unscaled);
        Assert.Equal(Math.E / (1 + Math.E), o[0], 6);
        Assert.Equal(Math.Log(1 + Math.E), lse[0], 6);
    }
}
