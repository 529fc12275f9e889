namespace Managed.Kernels.Layouts;

/// <summary>
/// Where the rows of a 4-D tensor (batch, heads, rows, dim) lie, in elements: row r of head h
/// of batch b starts at b * Batch + h * Head + r * Row, and its dim elements are contiguous
/// (the kernels read whole rows with vector loads). Offsets are 64-bit.
/// </summary>
/// <param name="Batch">Elements from one batch entry to the next.</param>
/// <param name="Head">Elements from one head to the next.</param>
/// <param name="Row">Elements from one row (a token) to the next.</param>
public readonly record struct RowStrides(long Batch, long Head, long Row)
{
    /// <summary>Dense (batch, heads, rows, dim), the layout when none is given.</summary>
    public static RowStrides HeadMajor(int heads, int rows, int dim) =>
        new((long)heads * rows * dim, (long)rows * dim, dim);

    /// <summary>Dense (batch, rows, heads, dim): Hugging Face's layout of projected Q, K and V
    /// before the transpose, which then costs nothing.</summary>
    public static RowStrides SequenceMajor(int heads, int rows, int dim) =>
        new((long)rows * heads * dim, dim, (long)heads * dim);

    /// <summary>Offset of row <paramref name="row"/> of (batch, head).</summary>
    public long Offset(int batch, int head, int row) => batch * Batch + head * Head + row * Row;

    /// <summary>One past the last element a (batch, heads, rows, dim) tensor reaches.</summary>
    public long Extent(int batch, int heads, int rows, int dim) =>
        (batch - 1) * Batch + (heads - 1) * Head + (rows - 1) * Row + dim;

    /// <summary>Throws unless the strides are non-negative and, when <paramref name="written"/>
    /// (an output), no two rows of a (batch, heads, rows, dim) tensor share an element.</summary>
    internal void Validate(int batch, int heads, int rows, int dim, bool written, string name)
    {
        if (Batch < 0 || Head < 0 || Row < 0)
            throw new ArgumentException($"{name} strides {this} must be non-negative.", name);
        if (!written) return;
        // Sufficient for no overlap: with the dims of more than one entry sorted by stride,
        // each stride steps past everything the smaller ones reach.
        Span<(long Stride, int Count)> dims = stackalloc (long, int)[3];
        int used = 0;
        if (batch > 1) dims[used++] = (Batch, batch);
        if (heads > 1) dims[used++] = (Head, heads);
        if (rows > 1) dims[used++] = (Row, rows);
        dims = dims[..used];
        dims.Sort((x, y) => x.Stride.CompareTo(y.Stride));
        long reach = dim;
        foreach (var (stride, count) in dims)
        {
            if (stride < reach)
                throw new ArgumentException(
                    $"{name} strides {this} make rows overlap: a stride of {stride} is less than "
                    + $"the {reach} elements the inner dimensions span.", name);
            reach = (count - 1) * stride + reach;
        }
    }
}
