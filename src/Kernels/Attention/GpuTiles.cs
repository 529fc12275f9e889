using ILGPU;

namespace Managed.Kernels.Attention;

/// <summary>
/// Compile-time tile geometry of the ILGPU attention kernel. ILGPU folds these static members
/// into constants when it specializes the kernel, so shared and local allocations get the
/// constant sizes they need. Thread (tr, tc) owns query rows tr + TR*i (i &lt; SR), keys
/// tc + TC*j (j &lt; SC) of each score tile and output columns tc + TC*c (c &lt; MaxDim/TC).
/// </summary>
internal interface IGpuTile
{
    /// <summary>Query rows per group.</summary>
    static abstract int BlockQ { get; }
    /// <summary>Keys per tile.</summary>
    static abstract int BlockK { get; }
    /// <summary>Rows of the score tile a thread owns.</summary>
    static abstract int RowsPerThread { get; }
    /// <summary>Keys of the score tile a thread owns.</summary>
    static abstract int KeysPerThread { get; }
    /// <summary>Largest headDim / valueDim the shared tiles hold.</summary>
    static abstract int MaxDim { get; }
}

/// <summary>headDim, valueDim &lt;= 256: 16 query rows, 16 keys, 64 threads, ~36 KB shared.</summary>
internal readonly struct GpuTile256 : IGpuTile
{
    public static int BlockQ => 16;
    public static int BlockK => 16;
    public static int RowsPerThread => 2;
    public static int KeysPerThread => 2;
    public static int MaxDim => 256;
}

/// <summary>How the threads of a query row combine their partial max and sum.</summary>
internal interface IRowReduction
{
    /// <summary>True: warp shuffles (CUDA, OpenCL with sub-groups); false: shared memory
    /// (OpenCL devices without sub-group shuffles, such as PoCL's CPU device).</summary>
    static abstract bool UsesShuffle { get; }
}

internal readonly struct ShuffleReduction : IRowReduction
{
    public static bool UsesShuffle => true;
}

internal readonly struct SharedMemoryReduction : IRowReduction
{
    public static bool UsesShuffle => false;
}

/// <summary>Scalars of one launch, passed by value. Row r of head h of batch b of Q starts at
/// b * QBatch + h * QHead + r * QRow (64-bit), likewise K, V and the output; a tile's rows are
/// then int offsets from its first row (row strides are validated to keep them in range).
/// Sequence b has keyLengths[b] keys when HasKeyLengths, SeqK otherwise; its query row 0 sits
/// at QueryOffset, plus (its keys - SeqK) when ShiftByLength.</summary>
internal readonly record struct GpuAttentionParams(
    int Batch, int Heads, int KvHeads, int SeqQ, int SeqK, int HeadDim, int ValueDim,
    int GroupSize, int QueryOffset, int QueryTiles, float Scale, int HasLogSumExp,
    int HasKeyLengths, int ShiftByLength,
    long QBatch, long QHead, int QRow, long KBatch, long KHead, int KRow,
    long VBatch, long VHead, int VRow, long OBatch, long OHead, int ORow)
{
    /// <summary>Keys of sequence b.</summary>
    public int KeysOf(ArrayView<int> keyLengths, int b) =>
        HasKeyLengths != 0 ? keyLengths[b] : SeqK;

    /// <summary>Position of query row 0 of sequence b, which has <paramref name="keys"/> keys.</summary>
    public int QueryOffsetOf(int keys) => QueryOffset + (ShiftByLength != 0 ? keys - SeqK : 0);

    /// <summary>Q from row <paramref name="row"/> of (b, h) on.</summary>
    public ArrayView<T> QueryRows<T>(ArrayView<T> query, int b, int h, int row)
        where T : unmanaged => GpuViews.From(query, b * QBatch + h * QHead + row * (long)QRow);

    /// <summary>K from row <paramref name="row"/> of (b, kvh) on.</summary>
    public ArrayView<T> KeyRows<T>(ArrayView<T> key, int b, int kvh, int row)
        where T : unmanaged => GpuViews.From(key, b * KBatch + kvh * KHead + row * (long)KRow);

    /// <summary>V from row <paramref name="row"/> of (b, kvh) on.</summary>
    public ArrayView<T> ValueRows<T>(ArrayView<T> value, int b, int kvh, int row)
        where T : unmanaged => GpuViews.From(value, b * VBatch + kvh * VHead + row * (long)VRow);

    /// <summary>The output from row <paramref name="row"/> of (b, h) on.</summary>
    public ArrayView<float> OutputRows(ArrayView<float> output, int b, int h, int row) =>
        GpuViews.From(output, b * OBatch + h * OHead + row * (long)ORow);
}

/// <summary>How the register-tiled kernel addresses rows, a compile-time choice: dense
/// head-major tensors under 2^31 elements with 32-bit indices (the arithmetic of the kernel
/// before layouts, which ptxas schedules best), or strided rows, per-sequence key lengths and
/// 64-bit offsets.</summary>
internal interface IRowAddressing
{
    static abstract bool Strided { get; }
}

internal readonly struct DenseRows : IRowAddressing
{
    public static bool Strided => false;
}

internal readonly struct StridedRows : IRowAddressing
{
    public static bool Strided => true;
}

/// <summary>Views from an element on, inside kernels: a 64-bit offset folded into the view
/// once, so the loops index it with 32-bit offsets.</summary>
internal static class GpuViews
{
    public static ArrayView<T> From<T>(ArrayView<T> view, long offset) where T : unmanaged =>
        view.SubView(offset, view.Length - offset);
}

/// <summary>Output columns per thread of the register-tiled kernel: 8 (dims &lt;= 64) or 16
/// (dims &lt;= 128). A compile-time constant, so the unused half of the tile is removed.</summary>
internal interface IRegisterTileColumns
{
    static abstract bool Wide { get; }
}

internal readonly struct RegisterTileColumns64 : IRegisterTileColumns
{
    public static bool Wide => false;
}

internal readonly struct RegisterTileColumns128 : IRegisterTileColumns
{
    public static bool Wide => true;
}

/// <summary>The mask test of a partial tile, shared by both ILGPU kernels.</summary>
internal static class GpuMask
{
    /// <summary>
    /// Whether (pos, k) is allowed: two compares against the row's bounds [start, end) when
    /// the mask declares its rows intervals (the bounds come from <see cref="RowStart"/> and
    /// <see cref="RowEnd"/>, computed once per row), else the mask's own predicate.
    /// </summary>
    public static bool Allows<TMask>(TMask mask, int b, int h, int pos, int k, int start, int end)
        where TMask : struct, Variants.IMaskPredicate =>
        TMask.RowIsInterval ? k >= start && k < end : mask.Allows(b, h, pos, k);

    /// <summary>The first allowed key of row pos when the rows are intervals (else unused, 0).</summary>
    public static int RowStart<TMask>(TMask mask, int b, int h, int pos)
        where TMask : struct, Variants.IMaskPredicate =>
        TMask.RowIsInterval ? mask.KeyStart(b, h, pos, pos + 1) : 0;

    /// <summary>The end of row pos's allowed keys when the rows are intervals (else unused, 0).</summary>
    public static int RowEnd<TMask>(TMask mask, int b, int h, int pos)
        where TMask : struct, Variants.IMaskPredicate =>
        TMask.RowIsInterval ? mask.KeyEnd(b, h, pos, pos + 1) : 0;
}
