using FsCheck;
using FsCheck.Xunit;
using Managed.Tensors;
using Xunit;

namespace Managed.Tests.Tensors;

public class TensorShapeTests
{
    [Fact]
    public void DimsStridesAndCountAreRowMajor()
    {
        var shape = new TensorShape(2, 3, 4);

        Assert.Equal(3, shape.Rank);
        Assert.Equal([2, 3, 4], shape.ToArray());
        Assert.Equal([12L, 4L, 1L], shape.StridesToArray());
        Assert.Equal(24, shape.ElementCount);
        Assert.True(shape.IsContiguous);
        Assert.Equal("(2, 3, 4)", shape.ToString());
    }

    // Rank 1..8, dims 0..6: stride[i] = product of dims after i, count = product of all.
    [Property(MaxTest = 200)]
    public bool StridesAreSuffixProducts(NonEmptyArray<byte> raw)
    {
        int[] dims = raw.Get.Take(TensorShape.MaxRank).Select(b => b % 7).ToArray();
        var shape = new TensorShape(dims);
        long suffix = 1;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            if (shape.GetStride(i) != suffix || shape[i] != dims[i])
                return false;
            suffix *= dims[i];
        }
        return shape.ElementCount == suffix && shape.IsContiguous;
    }

    [Fact]
    public void NegativeDimensionThrowsNamingTheDimension()
    {
        var e = Assert.Throws<ArgumentException>(() => new TensorShape(2, -1, 4));
        Assert.Equal("dims", e.ParamName);
        Assert.Contains("Dimension 1", e.Message);
    }

    [Fact]
    public void RankOutsideOneToEightThrows()
    {
        Assert.Throws<ArgumentException>(() => new TensorShape(ReadOnlySpan<int>.Empty));
        Assert.Throws<ArgumentException>(() => new TensorShape(1, 1, 1, 1, 1, 1, 1, 1, 1));
        Assert.Equal(8, new TensorShape(1, 1, 1, 1, 1, 1, 1, 1).Rank);
    }

    [Fact]
    public void DefaultShapeIsRankZeroAndCannotBeAllocated()
    {
        // new TensorShape() is the parameterless struct constructor, not the params one.
        var shape = new TensorShape();
        Assert.Equal(0, shape.Rank);
        Assert.Equal(0, shape.ElementCount);
        Assert.Throws<ArgumentException>(() => NdTensor.Allocate(shape));
        Assert.Throws<ArgumentException>(() => NdTensor.Allocate());
    }

    [Fact]
    public void ElementCountOverflowThrows()
    {
        var e = Assert.Throws<ArgumentException>(
            () => new TensorShape(int.MaxValue, int.MaxValue, int.MaxValue));
        Assert.Contains("overflow", e.Message);
    }

    [Fact]
    public void DimensionOutOfRangeThrows()
    {
        var shape = new TensorShape(2, 3);
        Assert.Throws<ArgumentOutOfRangeException>(() => shape[2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => shape.GetStride(-1));
    }

    [Fact]
    public void EqualityComparesDims()
    {
        Assert.Equal(new TensorShape(2, 3), new TensorShape(2, 3));
        Assert.True(new TensorShape(2, 3) == new TensorShape(2, 3));
        Assert.True(new TensorShape(2, 3) != new TensorShape(3, 2));
        Assert.True(new TensorShape(6) != new TensorShape(6, 1));
        Assert.Equal(new TensorShape(2, 3).GetHashCode(), new TensorShape(2, 3).GetHashCode());
    }

    [Fact]
    public void DataTypeSizes()
    {
        Assert.Equal(4, DataType.Float32.SizeInBytes());
        Assert.Equal(2, DataType.Float16.SizeInBytes());
        Assert.Throws<ArgumentOutOfRangeException>(() => ((DataType)9).SizeInBytes());
    }
}
