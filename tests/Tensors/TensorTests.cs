using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using FsCheck;
using FsCheck.Xunit;
using Managed.Tensors;
using Xunit;

namespace Managed.Tests.Tensors;

public class TensorTests
{
    private static NdTensor Iota(params int[] dims)
    {
        var tensor = NdTensor.Allocate(dims);
        var span = tensor.AsSpan();
        for (int i = 0; i < span.Length; i++)
            span[i] = i;
        return tensor;
    }

    [Fact]
    public unsafe void AllocateIsZeroedOwnedAndAligned()
    {
        using var tensor = NdTensor.Allocate(3, 5, 7);

        Assert.Equal(new TensorShape(3, 5, 7), tensor.Shape);
        Assert.Equal(DataType.Float32, tensor.DataType);
        Assert.True(tensor.IsHost && tensor.OwnsMemory && !tensor.IsView);
        Assert.All(tensor.AsSpan().ToArray(), x => Assert.Equal(0f, x));
        fixed (float* p = tensor.AsSpan())
            Assert.Equal(0, (long)p % 64);
    }

    [Fact]
    public void EmptyDimensionAllocates()
    {
        using var tensor = NdTensor.Allocate(0, 4);
        Assert.Equal(0, tensor.ElementCount);
        Assert.True(tensor.AsSpan().IsEmpty);
    }

    [Fact]
    public void IndexerIsRowMajor()
    {
        using var tensor = Iota(2, 3, 4);

        Assert.Equal(1 * 12 + 2 * 4 + 3, tensor[1, 2, 3]);
        tensor[0, 1, 2] = -5f;
        Assert.Equal(-5f, tensor.AsSpan()[6]);
        Assert.Throws<ArgumentOutOfRangeException>(() => tensor[0, 3, 0]);
        Assert.Throws<ArgumentException>(() => tensor[0, 0]);
    }

    [Fact]
    public void SliceIndexIsAViewThatWritesThroughToTheParent()
    {
        using var parent = Iota(4, 3, 2);
        var view = parent.Slice(2);

        Assert.True(view.IsView && !view.OwnsMemory);
        Assert.Equal(new TensorShape(3, 2), view.Shape);
        Assert.Equal(2 * 6 + 1 * 2 + 1, view[1, 1]);
        view[1, 1] = 100f;
        Assert.Equal(100f, parent[2, 1, 1]);
        Assert.True(Unsafe.AreSame(ref view.AsSpan()[0], ref parent.AsSpan()[12]));
    }

    [Fact]
    public void SliceRangeKeepsRankAndSharesMemory()
    {
        using var parent = Iota(5, 4);
        var view = parent.Slice(1, 3);

        Assert.Equal(new TensorShape(3, 4), view.Shape);
        Assert.Equal(12, view.AsSpan().Length);
        view.AsSpan().Fill(-1f);
        Assert.Equal(3f, parent[0, 3]);
        Assert.Equal(-1f, parent[1, 0]);
        Assert.Equal(-1f, parent[3, 3]);
        Assert.Equal(16f, parent[4, 0]);
        Assert.Equal(0, parent.Slice(5, 0).ElementCount);
    }

    [Fact]
    public void SliceOutOfRangeThrows()
    {
        using var tensor = NdTensor.Allocate(3, 2);

        Assert.Throws<ArgumentOutOfRangeException>(() => tensor.Slice(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => tensor.Slice(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => tensor.Slice(4, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => tensor.Slice(1, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => tensor.Slice(0, -1));
        Assert.Throws<InvalidOperationException>(() => tensor.Slice(0).Slice(0));
    }

    // t.Slice(s, l).Slice(i)[j, k] == t[s + i, j, k], and Slice(i).Slice(j)[k] == t[i, j, k].
    [Property(MaxTest = 100)]
    public bool SlicesOfSlicesAddress(PositiveInt a, PositiveInt b, PositiveInt c, int seed)
    {
        int d0 = a.Get % 6 + 1, d1 = b.Get % 5 + 1, d2 = c.Get % 4 + 1;
        var random = new Random(seed);
        int s = random.Next(d0), l = random.Next(1, d0 - s + 1), i = random.Next(l);
        int j = random.Next(d1), k = random.Next(d2);
        using var t = Iota(d0, d1, d2);

        return t.Slice(s, l).Slice(i)[j, k] == t[s + i, j, k]
            && t.Slice(s + i).Slice(j)[k] == t[s + i, j, k]
            && t.Slice(s, l).Slice(i, l - i).Slice(0)[j, k] == t[s + i, j, k];
    }

    [Fact]
    public void ReshapeIsAViewAndInfersOneDimension()
    {
        using var tensor = Iota(2, 3, 4);
        var flat = tensor.Reshape(6, -1);

        Assert.Equal(new TensorShape(6, 4), flat.Shape);
        Assert.Equal(tensor[1, 2, 3], flat[5, 3]);
        flat[5, 3] = 7.5f;
        Assert.Equal(7.5f, tensor[1, 2, 3]);
        Assert.Equal(new TensorShape(3, 4), tensor.Slice(1).Reshape(3, 4).Shape);
        Assert.Equal(12f, tensor.Slice(1).Reshape(12)[0]);
    }

    [Theory]
    [InlineData(new[] { 5, 5 })]
    [InlineData(new[] { -1, -1 })]
    [InlineData(new[] { 5, -1 })]
    [InlineData(new[] { 0, -1 })]
    [InlineData(new[] { -2, -12 })]
    public void ReshapeToOtherCountThrows(int[] dims)
    {
        using var tensor = NdTensor.Allocate(2, 3, 4);
        var e = Assert.Throws<ArgumentException>(() => tensor.Reshape(dims));
        Assert.Equal("dims", e.ParamName);
    }

    [Fact]
    public void TensorSpanRoundTripIsTheSameMemory()
    {
        using var parent = Iota(3, 4, 5);
        var view = parent.Slice(1, 2);
        TensorSpan<float> span = view.AsTensorSpan();

        Assert.Equal([2, 4, 5], span.Lengths.ToArray());
        Assert.Equal([20, 5, 1], span.Strides.ToArray());
        Assert.True(Unsafe.AreSame(
            ref span.GetPinnableReference(), ref parent.AsSpan()[20]));
        span[[1, 2, 3]] = -9f;
        Assert.Equal(-9f, parent[2, 2, 3]);

        ReadOnlyTensorSpan<float> readOnly = parent.AsReadOnlyTensorSpan();
        Assert.Equal(parent[2, 3, 4], readOnly[[2, 3, 4]]);
    }

    [Fact]
    public void CopyOfTensorSpanCopies()
    {
        float[] data = [1, 2, 3, 4, 5, 6];
        var source = new ReadOnlyTensorSpan<float>(data, [2, 3]);
        using var copy = NdTensor.CopyOf(source);

        Assert.Equal(new TensorShape(2, 3), copy.Shape);
        Assert.Equal(data, copy.AsSpan().ToArray());
        copy[0, 0] = 10f;
        Assert.Equal(1f, data[0]);
    }

    [Fact]
    public void FromArrayWrapsWithoutCopy()
    {
        float[] data = [1, 2, 3, 4, 5, 6];
        using var tensor = NdTensor.FromArray(data, 3, 2);

        Assert.False(tensor.OwnsMemory);
        Assert.True(Unsafe.AreSame(ref tensor.AsSpan()[0], ref data[0]));
        tensor[2, 1] = 60f;
        Assert.Equal(60f, data[5]);
        data[0] = 10f;
        Assert.Equal(10f, tensor[0, 0]);
        Assert.True(Unsafe.AreSame(
            ref tensor.AsTensorSpan().GetPinnableReference(), ref data[0]));
    }

    [Fact]
    public void FromMemoryWrapsASegment()
    {
        float[] data = new float[10];
        using var tensor = NdTensor.FromMemory(data.AsMemory(2, 6), 2, 3);

        tensor[1, 2] = 1f;
        Assert.Equal(1f, data[7]);
    }

    [Fact]
    public void WrappedLengthMismatchThrows()
    {
        var e = Assert.Throws<ArgumentException>(() => NdTensor.FromArray(new float[5], 2, 3));
        Assert.Equal("dims", e.ParamName);
        Assert.Throws<ArgumentNullException>(() => NdTensor.FromArray(null!, 1));
    }

    [Fact]
    public void CopyFromAndCopyToRoundTrip()
    {
        float[] source = Enumerable.Range(0, 12).Select(i => i * 0.5f).ToArray();
        using var tensor = NdTensor.Allocate(4, 3);
        tensor.Slice(1, 2).CopyFrom(source.AsSpan(0, 6));
        var back = new float[8];
        tensor.Slice(1, 2).CopyTo(back);

        Assert.Equal(source[..6], back[..6]);
        Assert.Equal(0f, tensor[0, 2]);
        Assert.Equal(source[5], tensor[2, 2]);
        Assert.Throws<ArgumentException>(() => tensor.CopyFrom(source.AsSpan(0, 11)));
        Assert.Throws<ArgumentException>(() => tensor.CopyTo(new float[11]));
    }

    [Fact]
    public void DisposeIsIdempotentAndUseAfterDisposeThrows()
    {
        var tensor = NdTensor.Allocate(2, 3);
        var view = tensor.Slice(1);
        var reshaped = tensor.Reshape(6);
        tensor.Dispose();
        tensor.Dispose();

        Assert.True(tensor.IsDisposed && view.IsDisposed && reshaped.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => tensor.AsSpan());
        Assert.Throws<ObjectDisposedException>(() => tensor.AsTensorSpan());
        Assert.Throws<ObjectDisposedException>(() => tensor[0, 0]);
        Assert.Throws<ObjectDisposedException>(() => tensor.Slice(0));
        Assert.Throws<ObjectDisposedException>(() => tensor.Reshape(6));
        Assert.Throws<ObjectDisposedException>(() => view.AsSpan());
        Assert.Throws<ObjectDisposedException>(() => view[0]);
        Assert.Throws<ObjectDisposedException>(() => reshaped.AsReadOnlyTensorSpan());
        Assert.Throws<ObjectDisposedException>(() => view.CopyTo(new float[3]));
    }

    [Fact]
    public void DisposingAViewLeavesTheOwnerAlive()
    {
        using var tensor = Iota(2, 3);
        var view = tensor.Slice(1);
        view.Dispose();

        Assert.Throws<ObjectDisposedException>(() => view.AsSpan());
        Assert.False(tensor.IsDisposed);
        Assert.Equal(5f, tensor[1, 2]);
        Assert.Equal(5f, tensor.Slice(1)[2]);
    }

    [Fact]
    public void DisposingAWrapperDoesNotFreeTheUserArray()
    {
        float[] data = [1, 2, 3, 4];
        var tensor = NdTensor.FromArray(data, 2, 2);
        tensor[1, 1] = 40f;
        tensor.Dispose();
        tensor.Dispose();

        Assert.Equal([1f, 2f, 3f, 40f], data);
        data[0] = 5f;
        Assert.Equal(5f, data[0]);
        Assert.Throws<ObjectDisposedException>(() => tensor.AsSpan());
        using var again = NdTensor.FromArray(data, 4);
        Assert.Equal(40f, again[3]);
    }

    [Fact]
    public void ForgottenDisposeIsFreedByTheFinalizer()
    {
        var handle = AllocateAndForget();
        for (int i = 0; i < 3 && handle.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(handle.IsAlive);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference AllocateAndForget()
    {
        var tensor = NdTensor.Allocate(1024);
        return new WeakReference(((NativeHostStorage)tensor.Storage).Handle);
    }

    [Fact]
    public void AViewKeepsTheMemoryAliveAfterItsOwnerIsUnreachable()
    {
        var view = SliceOfForgottenTensor();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.Equal(2f, view[0]);
        Assert.False(view.IsDisposed);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static NdTensor SliceOfForgottenTensor() => Iota(3, 1).Slice(2);

    [Fact]
    public void ToStringShowsShapeAndState()
    {
        var tensor = NdTensor.Allocate(2, 3);
        Assert.Equal("NdTensor(2, 3) Float32 host", tensor.ToString());
        Assert.Equal("NdTensor(3) Float32 host view", tensor.Slice(0).ToString());
        tensor.Dispose();
        Assert.EndsWith("disposed", tensor.ToString());
    }
}
