using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Managed.Tests.Support;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>
/// An explicit query position (AttentionOptions.QueryPosition): a chunk of query rows at
/// positions [p, p + m) over all the keys gives the same rows as one call over every query
/// (chunked prefill), on the host and on the ILGPU CPU accelerator; the alignments are the
/// special cases 0 (top-left) and SeqK - SeqQ (bottom-right).
/// </summary>
public class QueryPositionTests
{
    private static float[] Data(long n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, (int)n).Select(_ => rng.NextSingle() * 2 - 1).ToArray();
    }

    [Theory]
    [InlineData(DeviceKind.Host, 0, 17)]
    [InlineData(DeviceKind.Host, 40, 33)]
    [InlineData(DeviceKind.Host, 95, 5)]
    [InlineData(DeviceKind.IlgpuCpu, 37, 30)]
    public void AChunkOfQueriesEqualsThoseRowsOfTheWholeCall(DeviceKind kind, int start, int rows)
    {
        using var device = ComputeDevice.Open(kind);
        const int n = 100, heads = 2, dim = 16;
        var full = new AttentionShape(1, heads, 1, n, n, dim, dim);
        var chunk = full with { SeqQ = rows };
        float[] q = Data(full.QueryLength, 1), k = Data(full.KeyLength, 2),
            v = Data(full.ValueLength, 3);
        var mask = SlidingWindowMask.Causal(24);
        var score = new SoftcapScore(5f);
        var (whole, _) = ReferenceAttention.Forward(full, q, k, v, score, mask,
            default(SoftmaxNormalizer));
        var qChunk = new float[chunk.QueryLength];
        for (int h = 0; h < heads; h++)
            Array.Copy(q, (h * n + start) * dim, qChunk, h * rows * dim, rows * dim);
        var o = new float[chunk.OutputLength];
        var lse = new float[chunk.LogSumExpLength];
        var options = new AttentionOptions { QueryPosition = start };
        FlashAttention.Forward(device, chunk, qChunk, k, v, o, lse, score, mask,
            default(SoftmaxNormalizer), options);
        var expected = new double[chunk.OutputLength];
        for (int h = 0; h < heads; h++)
            Array.Copy(whole, (h * n + start) * dim, expected, h * rows * dim, rows * dim);
        Tolerance.Kernel.AssertClose(o, expected, "output", $"{kind} start {start} rows {rows}");
        var (refChunk, refLse) = ReferenceAttention.Forward(chunk, qChunk, k, v, score, mask,
            default(SoftmaxNormalizer), options);
        Tolerance.Kernel.AssertClose(o, refChunk, "output vs reference", $"{kind}");
        Tolerance.Kernel.AssertClose(lse, refLse, "log-sum-exp", $"{kind}");
    }

    [Fact]
    public void TheAlignmentsAreExplicitPositions()
    {
        var shape = new AttentionShape(1, 1, 1, 7, 20, 8, 8);
        Assert.Equal(13, new AttentionOptions().QueryOffsetFor(shape));
        Assert.Equal(0, new AttentionOptions { Alignment = QueryAlignment.TopLeft }
            .QueryOffsetFor(shape));
        Assert.Equal(4, new AttentionOptions { QueryPosition = 4 }.QueryOffsetFor(shape));
    }

    [Fact]
    public void ANegativeOrOverflowingPositionIsRejected()
    {
        var shape = new AttentionShape(1, 1, 1, 4, 4, 8, 8);
        var o = new float[shape.OutputLength];
        foreach (int position in new[] { -1, int.MaxValue - 2 })
        {
            var e = Assert.Throws<ArgumentException>(() => FlashAttention.Forward(
                ComputeDevice.Host, shape, new float[32], new float[32], new float[32], o,
                default, default(NoScore), default(CausalMask), default(SoftmaxNormalizer),
                new AttentionOptions { QueryPosition = position }));
            Assert.Equal("options", e.ParamName);
        }
    }
}
