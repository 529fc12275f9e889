using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;
using Managed.Tensors;
using Xunit;

namespace Managed.Tests.Devices;

/// <summary>
/// The device object: listing and opening, disposal (defect 1: use after dispose, dispose while
/// another thread runs a kernel), view checks (defect 2), kernels shared between device objects
/// (defect 9) and the workspace.
/// </summary>
public class ComputeDeviceTests
{
    private static readonly AttentionShape Shape = new(1, 2, 1, 9, 13, 8, 8);

    private static float[] Data(long n, int seed)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    [Fact]
    public void ListHasTheHostAndTheIlgpuCpuAccelerator()
    {
        var list = ComputeDevice.List();
        Assert.Equal(DeviceKind.Host, list[0].Kind);
        Assert.Contains(list, d => d.Kind == DeviceKind.IlgpuCpu && d.Index == 0);
        Assert.DoesNotContain(list, d => d.Kind == DeviceKind.Auto);
    }

    [Fact]
    public void OpenRejectsAnUnknownKindAndAMissingIndex()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ComputeDevice.Open((DeviceKind)99));
        Assert.Throws<ArgumentOutOfRangeException>(() => ComputeDevice.Open(DeviceKind.Host, -1));
        var e = Assert.Throws<InvalidOperationException>(() =>
            ComputeDevice.Open(DeviceKind.IlgpuCpu, 7));
        Assert.Contains("there are 1", e.Message);
    }

    [Fact]
    public void TensorsOfADisposedDeviceThrowObjectDisposed()
    {
        var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        using var tensor = NdTensor.FromArray(Data(12, 1), 3, 4).ToDevice(device);
        var view = tensor.Slice(1);
        device.Dispose();
        Assert.True(device.IsDisposed);
        Assert.True(tensor.IsDisposed);
        Assert.True(view.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => tensor.ToHost());
        Assert.Throws<ObjectDisposedException>(() => view.CopyTo(new float[4]));
        Assert.Throws<ObjectDisposedException>(() => tensor.CopyFrom(new float[12]));
        Assert.Throws<ObjectDisposedException>(() => NdTensor.Allocate(device, 2));
        Assert.Throws<ObjectDisposedException>(() => device.Accelerator);
        Assert.Throws<ObjectDisposedException>(() => FlashAttention.Forward(device, Shape,
            new float[Shape.QueryLength], new float[Shape.KeyLength], new float[Shape.ValueLength],
            new float[Shape.OutputLength], default, default(NoScore), default(NoMask),
            default(SoftmaxNormalizer)));
        tensor.Dispose(); // after the device: no crash, nothing to free
    }

    [Fact]
    public void DisposeWhileAnotherThreadRunsKernelsWaitsAndLaterCallsThrow()
    {
        var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        float[] q = Data(Shape.QueryLength, 2), k = Data(Shape.KeyLength, 3),
            v = Data(Shape.ValueLength, 4);
        var o = new float[Shape.OutputLength];
        int completed = 0;
        Exception? unexpected = null;
        using var started = new ManualResetEventSlim();
        var worker = new Thread(() =>
        {
            try
            {
                while (true)
                {
                    FlashAttention.Forward(device, Shape, q, k, v, o, default, default(NoScore),
                        default(CausalMask), default(SoftmaxNormalizer));
                    completed++;
                    started.Set();
                }
            }
            catch (ObjectDisposedException) { }
            catch (Exception e) { unexpected = e; }
            finally { started.Set(); }
        });
        worker.Start();
        Assert.True(started.Wait(TimeSpan.FromSeconds(60)), "no call finished");
        device.Dispose();
        Assert.True(worker.Join(TimeSpan.FromSeconds(60)), "the worker did not stop");
        Assert.Null(unexpected);
        Assert.True(completed > 0);
    }

    [Fact]
    public void ViewEntryPointRejectsOverlapsAndViewsOfAnotherAccelerator()
    {
        using var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        using var other = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        var acc = device.Accelerator!;
        using var q = acc.Allocate1D(Data(Shape.QueryLength, 5));
        using var kv = acc.Allocate1D(Data(Shape.KeyLength + Shape.OutputLength, 6));
        using var v = acc.Allocate1D(Data(Shape.ValueLength, 7));
        using var foreign = other.Accelerator!.Allocate1D<float>(Shape.OutputLength);
        var k = kv.View.SubView(0, Shape.KeyLength);
        // The output starts inside K: overlapping by one element.
        var overlapping = kv.View.SubView(Shape.KeyLength - 1, Shape.OutputLength);
        var e = Assert.Throws<ArgumentException>(() => FlashAttention.Forward(device, Shape,
            q.View, k, v.View, overlapping, default, default(NoScore), default(NoMask),
            default(SoftmaxNormalizer)));
        Assert.Equal("output", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => FlashAttention.Forward(device, Shape,
            q.View, k, v.View, foreign.View, default, default(NoScore), default(NoMask),
            default(SoftmaxNormalizer)));
        Assert.Equal("output", e.ParamName);
        Assert.Contains("not of", e.Message);
        e = Assert.Throws<ArgumentException>(() => FlashAttention.Forward(ComputeDevice.Host,
            Shape, q.View, k, v.View, foreign.View, default, default(NoScore), default(NoMask),
            default(SoftmaxNormalizer)));
        Assert.Equal("device", e.ParamName);
    }

    [Fact]
    public void ViewEntryPointRejectsATableOfAnotherAccelerator()
    {
        using var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        using var other = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        var acc = device.Accelerator!;
        using var q = acc.Allocate1D(Data(Shape.QueryLength, 5));
        using var k = acc.Allocate1D(Data(Shape.KeyLength, 6));
        using var v = acc.Allocate1D(Data(Shape.ValueLength, 7));
        using var o = acc.Allocate1D<float>(Shape.OutputLength);
        using var ids = new VariantTable<int>(new int[Shape.SeqK]).Upload(other.Accelerator!);
        var mask = new DocumentIdMask<DeviceTable<int>>(
            new DeviceTable<int>(ids.View.SubView(0, Shape.SeqK)), Shape.SeqK,
            DocumentIdOrder.NonDecreasing);
        var e = Assert.Throws<ArgumentException>(() => FlashAttention.Forward(device, Shape,
            q.View, k.View, v.View, o.View, default, default(NoScore), mask,
            default(SoftmaxNormalizer)));
        Assert.Equal("mask", e.ParamName);
        Assert.Contains("DeviceTable", e.Message);
    }

    [Fact]
    public void ANewDeviceObjectReusesCompiledKernels()
    {
        var mask = new SlidingWindowMask(3, 2);
        float[] q = Data(Shape.QueryLength, 8), k = Data(Shape.KeyLength, 9),
            v = Data(Shape.ValueLength, 10);
        var first = new float[Shape.OutputLength];
        var second = new float[Shape.OutputLength];
        using (var device = ComputeDevice.Open(DeviceKind.IlgpuCpu))
            FlashAttention.Forward(device, Shape, q, k, v, first, default,
                new TemperatureScore(0.75f), mask, default(SoftmaxNormalizer));
        // The kernel this call runs (head dim 8: register-tiled, shuffles on the CPU
        // accelerator); other tests compile other kernels concurrently, so count this one only.
        var method = KernelMethods<Float32Element, float, TemperatureScore, SlidingWindowMask, SoftmaxNormalizer,
            KeyRangeSchedule>.For(Shape.HeadDim, shuffle: true);
        Assert.Equal(1, KernelCache.TimesCompiled(method));
        using (var device = ComputeDevice.Open(DeviceKind.IlgpuCpu))
        {
            FlashAttention.Forward(device, Shape, q, k, v, second, default,
                new TemperatureScore(0.75f), mask, default(SoftmaxNormalizer));
            Assert.Equal(1, device.LoadedKernelCount);
        }
        Assert.Equal(1, KernelCache.TimesCompiled(method));
        Assert.Equal(first, second);
    }

    [Fact]
    public void SpanCallsReuseTheWorkspace()
    {
        using var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        float[] q = Data(Shape.QueryLength, 11), k = Data(Shape.KeyLength, 12),
            v = Data(Shape.ValueLength, 13);
        var o = new float[Shape.OutputLength];
        var lse = new float[Shape.LogSumExpLength];
        var clipped = new ClippedSoftmaxNormalizer(1.5f, -0.05f);
        FlashAttention.Forward(device, Shape, q, k, v, o, lse, default(NoScore),
            default(CausalMask), clipped);
        long bytes = device.WorkspaceBytes;
        Assert.True(bytes > 0);
        for (int i = 0; i < 3; i++)
            FlashAttention.Forward(device, Shape, q, k, v, o, lse, default(NoScore),
                default(CausalMask), clipped);
        Assert.Equal(bytes, device.WorkspaceBytes);
    }

    [Fact]
    public void HostTwoPassCallsAllocateNoBuffersPerCall()
    {
        var shape = new AttentionShape(1, 4, 4, 256, 4096, 64, 64);
        float[] q = Data(shape.QueryLength, 14), k = Data(shape.KeyLength, 15),
            v = Data(shape.ValueLength, 16);
        var o = new float[shape.OutputLength];
        var options = new AttentionOptions
        {
            Tuning = new AttentionTuning { MaxDegreeOfParallelism = 1 },
        };
        var clipped = new ClippedSoftmaxNormalizer(1.5f, -0.05f);
        void Call() => FlashAttention.Forward(ComputeDevice.Host, shape, q, k, v, o, default,
            default(NoScore), default(CausalMask), clipped, options);
        Call();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Call();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // Before: two arrays of the output's and the statistics' size per call (1 MB here)
        // and 4 MB of pooled key transposes; now a few small objects of the work queue.
        Assert.True(allocated < 4096, $"{allocated} bytes allocated by one call");
    }

    [Theory]
    [InlineData(DeviceKind.Host)]
    [InlineData(DeviceKind.IlgpuCpu)]
    public void ConcurrentCallsOnOneDeviceGiveTheSingleThreadedResults(DeviceKind kind)
    {
        using var device = ComputeDevice.Open(kind);
        float[] q = Data(Shape.QueryLength, 20), k = Data(Shape.KeyLength, 21),
            v = Data(Shape.ValueLength, 22);
        var expected = new float[Shape.OutputLength];
        FlashAttention.Forward(device, Shape, q, k, v, expected, default, new AlibiScore(2),
            default(CausalMask), default(SoftmaxNormalizer));
        var outputs = new float[4][];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var o = new float[Shape.OutputLength];
            for (int round = 0; round < 3; round++)
                FlashAttention.Forward(device, Shape, q, k, v, o, default, new AlibiScore(2),
                    default(CausalMask), default(SoftmaxNormalizer));
            outputs[i] = o;
        });
        foreach (var o in outputs) Assert.Equal(expected, o);
    }
}
