using System.Runtime.CompilerServices;
using System.Text;

namespace Managed.Tensors;

/// <summary>
/// Dims and strides (in elements) of a tensor of rank 1..<see cref="MaxRank"/>. Shapes built
/// from dims are dense row-major: stride[i] = dims[i+1] * ... * dims[rank-1], stride[rank-1] = 1.
/// Immutable; <c>default</c> is rank 0 with no elements and is not a valid tensor shape.
/// </summary>
public readonly struct TensorShape : IEquatable<TensorShape>
{
    /// <summary>The largest rank a tensor may have.</summary>
    public const int MaxRank = 8;

    private readonly DimBuffer _dims;
    private readonly StrideBuffer _strides;

    /// <summary>Dense row-major shape with the given dims.</summary>
    /// <exception cref="ArgumentException">The rank is not 1..8, a dimension is negative, or the
    /// element count overflows; the message names the dimension.</exception>
    public TensorShape(params ReadOnlySpan<int> dims)
    {
        if (dims.Length is 0 or > MaxRank)
            throw new ArgumentException(
                $"A tensor has rank 1..{MaxRank}; got rank {dims.Length}.", nameof(dims));
        Rank = dims.Length;
        long stride = 1;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            if (dims[i] < 0)
                throw new ArgumentException(
                    $"Dimension {i} is {dims[i]}; every dimension must be >= 0.", nameof(dims));
            _dims[i] = dims[i];
            _strides[i] = stride;
            try
            {
                stride = checked(stride * dims[i]);
            }
            catch (OverflowException)
            {
                throw new ArgumentException(
                    $"Dimension {i} ({dims[i]}) makes the element count overflow a long.",
                    nameof(dims));
            }
        }
        ElementCount = stride;
    }

    private TensorShape(scoped in DimBuffer dims, scoped in StrideBuffer strides, int rank)
    {
        _dims = dims;
        _strides = strides;
        Rank = rank;
        long count = 1;
        for (int i = 0; i < rank; i++)
            count *= dims[i];
        ElementCount = count;
    }

    /// <summary>Number of dimensions.</summary>
    public int Rank { get; }

    /// <summary>dims[0] * dims[1] * ... * dims[rank-1]</summary>
    public long ElementCount { get; }

    /// <summary>Length of dimension <paramref name="dimension"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not in 0..rank-1.</exception>
    public int this[int dimension] => _dims[CheckDimension(dimension)];

    /// <summary>Elements between neighbours along <paramref name="dimension"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not in 0..rank-1.</exception>
    public long GetStride(int dimension) => _strides[CheckDimension(dimension)];

    /// <summary>True when the strides are the dense row-major strides of the dims.</summary>
    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int i = Rank - 1; i >= 0; i--)
            {
                // A stride along a dimension of length 1 is never used to address memory.
                if (_dims[i] != 1 && _strides[i] != expected)
                    return false;
                expected *= _dims[i];
            }
            return true;
        }
    }

    /// <summary>The dims as a new array of length <see cref="Rank"/>.</summary>
    public int[] ToArray()
    {
        var dims = new int[Rank];
        for (int i = 0; i < Rank; i++)
            dims[i] = _dims[i];
        return dims;
    }

    /// <summary>The strides as a new array of length <see cref="Rank"/>.</summary>
    public long[] StridesToArray()
    {
        var strides = new long[Rank];
        for (int i = 0; i < Rank; i++)
            strides[i] = _strides[i];
        return strides;
    }

    /// <summary>1 + sum_i (dims[i] - 1) * stride[i]: elements spanned from the first to the last
    /// element inclusive; 0 when the shape has no elements.</summary>
    internal long Extent
    {
        get
        {
            if (ElementCount == 0)
                return 0;
            long extent = 1;
            for (int i = 0; i < Rank; i++)
                extent += (_dims[i] - 1) * _strides[i];
            return extent;
        }
    }

    /// <summary>The shape without dimension 0 (rank - 1), same strides for the rest.</summary>
    internal TensorShape DropLeading()
    {
        DimBuffer dims = default;
        StrideBuffer strides = default;
        for (int i = 1; i < Rank; i++)
        {
            dims[i - 1] = _dims[i];
            strides[i - 1] = _strides[i];
        }
        return new TensorShape(dims, strides, Rank - 1);
    }

    /// <summary>The shape with dimension 0 set to <paramref name="length"/>, same strides.
    /// </summary>
    internal TensorShape WithLeading(int length)
    {
        DimBuffer dims = _dims;
        dims[0] = length;
        return new TensorShape(dims, _strides, Rank);
    }

    /// <summary>The shape with dimensions <paramref name="a"/> and <paramref name="b"/>
    /// swapped, strides with them.</summary>
    internal TensorShape Swap(int a, int b)
    {
        DimBuffer dims = _dims;
        StrideBuffer strides = _strides;
        (dims[a], dims[b]) = (dims[b], dims[a]);
        (strides[a], strides[b]) = (strides[b], strides[a]);
        return new TensorShape(dims, strides, Rank);
    }

    /// <summary>The shape with dimension <paramref name="dim"/> set to
    /// <paramref name="length"/>, same strides.</summary>
    internal TensorShape WithDim(int dim, int length)
    {
        DimBuffer dims = _dims;
        dims[dim] = length;
        return new TensorShape(dims, _strides, Rank);
    }

    /// <summary>Offset in elements of the element at <paramref name="indices"/>: sum_i idx_i *
    /// stride_i, with every index checked against its dimension.</summary>
    internal long OffsetOf(ReadOnlySpan<int> indices)
    {
        if (indices.Length != Rank)
            throw new ArgumentException(
                $"Expected {Rank} indices for shape {this}, got {indices.Length}.",
                nameof(indices));
        long offset = 0;
        for (int i = 0; i < Rank; i++)
        {
            if ((uint)indices[i] >= (uint)_dims[i])
                throw new ArgumentOutOfRangeException(nameof(indices),
                    $"Index {indices[i]} is outside dimension {i} of length {_dims[i]}.");
            offset += indices[i] * _strides[i];
        }
        return offset;
    }

    /// <summary>Writes the dims and strides as <see cref="nint"/> (the TensorSpan layout).
    /// </summary>
    internal void CopyTo(Span<nint> lengths, Span<nint> strides)
    {
        for (int i = 0; i < Rank; i++)
        {
            lengths[i] = _dims[i];
            strides[i] = checked((nint)_strides[i]);
        }
    }

    private int CheckDimension(int dimension)
    {
        if ((uint)dimension >= (uint)Rank)
            throw new ArgumentOutOfRangeException(nameof(dimension),
                $"Dimension {dimension} is not in 0..{Rank - 1}.");
        return dimension;
    }

    /// <summary>Same rank, dims and strides.</summary>
    public bool Equals(TensorShape other)
    {
        if (Rank != other.Rank)
            return false;
        for (int i = 0; i < Rank; i++)
        {
            if (_dims[i] != other._dims[i] || _strides[i] != other._strides[i])
                return false;
        }
        return true;
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is TensorShape other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        for (int i = 0; i < Rank; i++)
        {
            hash.Add(_dims[i]);
            hash.Add(_strides[i]);
        }
        return hash.ToHashCode();
    }

    /// <summary>left.Equals(right)</summary>
    public static bool operator ==(TensorShape left, TensorShape right) => left.Equals(right);

    /// <summary>!left.Equals(right)</summary>
    public static bool operator !=(TensorShape left, TensorShape right) => !left.Equals(right);

    /// <summary>The dims, e.g. "(2, 3, 4)".</summary>
    public override string ToString()
    {
        var text = new StringBuilder("(");
        for (int i = 0; i < Rank; i++)
            text.Append(i == 0 ? "" : ", ").Append(_dims[i]);
        return text.Append(')').ToString();
    }

    [InlineArray(MaxRank)]
    private struct DimBuffer
    {
        private int _element0;
    }

    [InlineArray(MaxRank)]
    private struct StrideBuffer
    {
        private long _element0;
    }
}
