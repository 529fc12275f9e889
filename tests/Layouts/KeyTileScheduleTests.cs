using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Managed.Tests.Support;
using Xunit;

namespace Managed.Tests.Layouts;

/// <summary>
/// Key-tile schedules on the host and the ILGPU CPU accelerator: the range schedule is the
/// default bit for bit; the parts of a split (and the steps of a ring) merged give the whole; a
/// block list visits exactly its tiles, in any order; bad schedules are rejected.
/// </summary>
public class KeyTileScheduleTests
{
    // 300 keys: 5 tiles of 64 on both devices (head dims <= 128 on ILGPU), the last partial.
    private static readonly AttentionShape Shape = new(2, 4, 2, 45, 300, 32, 24);

    private static float[] Data(long n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, (int)n).Select(_ => rng.NextSingle() * 2 - 1).ToArray();
    }

    private static (float[] Q, float[] K, float[] V) Inputs(AttentionShape s) =>
        (Data(s.QueryLength, 1), Data(s.KeyLength, 2), Data(s.ValueLength, 3));

    private static (float[] O, float[] Lse) Run<TSchedule>(ComputeDevice device,
        AttentionShape s, float[] q, float[] k, float[] v, TSchedule schedule)
        where TSchedule : struct, IKeyTileSchedule
    {
        var o = new float[s.OutputLength];
        var lse = new float[s.LogSumExpLength];
        FlashAttention.Forward(device, s, q, k, v, o, lse, new SoftcapScore(8f),
            SlidingWindowMask.Causal(200), default(SoftmaxNormalizer), schedule);
        return (o, lse);
    }

    [Theory]
    [InlineData(DeviceKind.Host)]
    [InlineData(DeviceKind.IlgpuCpu)]
    public void TheRangeScheduleIsTheDefault(DeviceKind kind)
    {
        using var device = ComputeDevice.Open(kind);
        var (q, k, v) = Inputs(Shape);
        var o = new float[Shape.OutputLength];
        FlashAttention.Forward(device, Shape, q, k, v, o, default, new SoftcapScore(8f),
            SlidingWindowMask.Causal(200), default(SoftmaxNormalizer));
        Assert.Equal(o, Run(device, Shape, q, k, v, default(KeyRangeSchedule)).O);
    }

    [Theory]
    [InlineData(DeviceKind.Host, 1)]
    [InlineData(DeviceKind.Host, 2)]
    [InlineData(DeviceKind.Host, 3)]
    [InlineData(DeviceKind.Host, 7)]
    [InlineData(DeviceKind.IlgpuCpu, 3)]
    public void ThePartsOfASplitMergeIntoTheWhole(DeviceKind kind, int parts)
    {
        using var device = ComputeDevice.Open(kind);
        var (q, k, v) = Inputs(Shape);
        var (whole, wholeLse) = ReferenceAttention.Forward(Shape, q, k, v, new SoftcapScore(8f),
            SlidingWindowMask.Causal(200), default(SoftmaxNormalizer));
        var (o, lse) = Run(device, Shape, q, k, v, new KeySplitSchedule(0, parts));
        for (int part = 1; part < parts; part++)
        {
            var (po, plse) = Run(device, Shape, q, k, v, new KeySplitSchedule(part, parts));
            AttentionMerge.Merge(Shape.ValueDim, o, lse, po, plse, o, lse);
        }
        Tolerance.Kernel.AssertClose(o, whole, "output", $"{kind}, {parts} parts");
        Tolerance.Kernel.AssertClose(lse, wholeLse, "log-sum-exp", $"{kind}, {parts} parts");
    }

    [Fact]
    public void ARingVisitsEveryPartOncePerDevice()
    {
        const int devices = 4;
        for (int rank = 0; rank < devices; rank++)
        {
            var parts = Enumerable.Range(0, devices)
                .Select(step => KeySplitSchedule.RingStep(rank, step, devices).Part).ToArray();
            Assert.Equal(Enumerable.Range(0, devices), parts.Order());
            Assert.Equal(rank, parts[0]);
        }
        // The parts of one range cover it exactly once, for every count.
        for (int parts = 1; parts <= 9; parts++)
            for (int first = 0; first < 3; first++)
                for (int end = first; end < first + 12; end++)
                {
                    var seen = new List<int>();
                    for (int part = 0; part < parts; part++)
                    {
                        var split = new KeySplitSchedule(part, parts);
                        for (int s = 0; s < split.Steps(0, 0, first, end); s++)
                            seen.Add(split.TileAt(0, 0, first, end, s));
                    }
                    Assert.Equal(Enumerable.Range(first, end - first), seen);
                }
    }

    [Theory]
    [InlineData(DeviceKind.Host)]
    [InlineData(DeviceKind.IlgpuCpu)]
    public void ABlockListVisitsItsTilesInAnyOrder(DeviceKind kind)
    {
        using var device = ComputeDevice.Open(kind);
        int tile = FlashAttention.KeyTileOf(device, Shape);
        Assert.Equal(64, tile);
        var s = Shape with { SeqQ = 5 };
        var (q, k, v) = Inputs(s);
        // Every (batch, head) lists tiles 3 and 0 (in that order), then ends; entry 3 is unused.
        int stride = 4;
        var lists = new int[s.Batch * s.Heads * stride];
        for (int i = 0; i < s.Batch * s.Heads; i++)
            (lists[i * stride], lists[i * stride + 1], lists[i * stride + 2], lists[i * stride + 3])
                = (3, 0, -1, 1);
        var o = new float[s.OutputLength];
        var lse = new float[s.LogSumExpLength];
        var table = new VariantTable<int>(lists);
        if (device.IsHost)
            FlashAttention.Forward(device, s, q, k, v, o, lse, default(NoScore), default(NoMask),
                default(SoftmaxNormalizer),
                new KeyBlockListSchedule<HostTable<int>>(table.Host, s.Heads, stride));
        else
        {
            using var buffer = table.Upload(device.Accelerator!);
            var onDevice = new DeviceTable<int>(buffer.View.SubView(0, lists.Length));
            FlashAttention.Forward(device, s, q, k, v, o, lse, default(NoScore), default(NoMask),
                default(SoftmaxNormalizer),
                new KeyBlockListSchedule<DeviceTable<int>>(onDevice, s.Heads, stride));
        }
        // Expected: attention over the keys of tiles 0 and 3 only (keys 0..63 and 192..255).
        var keep = Enumerable.Range(0, 64).Concat(Enumerable.Range(192, 64)).ToArray();
        var sub = s with { SeqK = keep.Length };
        var subK = new float[sub.KeyLength];
        var subV = new float[sub.ValueLength];
        for (int bh = 0; bh < s.Batch * s.KvHeads; bh++)
            for (int j = 0; j < keep.Length; j++)
            {
                Array.Copy(k, ((long)bh * s.SeqK + keep[j]) * s.HeadDim, subK,
                    ((long)bh * sub.SeqK + j) * s.HeadDim, s.HeadDim);
                Array.Copy(v, ((long)bh * s.SeqK + keep[j]) * s.ValueDim, subV,
                    ((long)bh * sub.SeqK + j) * s.ValueDim, s.ValueDim);
            }
        var (expected, expectedLse) = ReferenceAttention.Forward(sub, q, subK, subV,
            default(NoScore), default(NoMask), default(SoftmaxNormalizer));
        Tolerance.Kernel.AssertClose(o, expected, "output", $"{kind} block list");
        Tolerance.Kernel.AssertClose(lse, expectedLse, "log-sum-exp", $"{kind} block list");
    }

    [Fact]
    public void BadSchedulesAreRejectedBeforeAnythingIsWritten()
    {
        var (q, k, v) = Inputs(Shape);
        var o = new float[Shape.OutputLength];
        o.AsSpan().Fill(AttentionRun.Sentinel);
        void Call<TNorm, TSchedule>(TNorm norm, TSchedule schedule)
            where TNorm : struct, INormalizer where TSchedule : struct, IKeyTileSchedule =>
            FlashAttention.Forward(ComputeDevice.Host, Shape, q, k, v, o, default,
                default(NoScore), default(CausalMask), norm, schedule);
        var e = Assert.Throws<ArgumentException>(() =>
            Call(default(SoftmaxNormalizer), default(KeySplitSchedule)));
        Assert.Equal("schedule", e.ParamName);
        e = Assert.Throws<ArgumentException>(() =>
            Call(new ClippedSoftmaxNormalizer(1f, -0.01f), new KeySplitSchedule(0, 2)));
        Assert.Equal("schedule", e.ParamName);
        var small = new VariantTable<int>(new int[3]).Host;
        e = Assert.Throws<ArgumentException>(() => Call(default(SoftmaxNormalizer),
            new KeyBlockListSchedule<HostTable<int>>(small, Shape.Heads, 2)));
        Assert.Equal("schedule", e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new KeySplitSchedule(2, 2));
        Assert.All(o, x => Assert.Equal(AttentionRun.Sentinel, x));
    }
}
