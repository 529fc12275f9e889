using System.Runtime.CompilerServices;
using ILGPU;

namespace Managed.Kernels.LinearAttention;

/// <summary>A thread's 8 elements of one staged 16 x 64 operand slice, held in registers
/// between the global loads and the shared stores, so the next slice's loads are in flight
/// while the current one is multiplied.</summary>
internal readonly record struct Slice8(float V0, float V1, float V2, float V3, float V4,
    float V5, float V6, float V7);

/// <summary>
/// Global-to-shared staging of the chunked linear-attention tiles: a slice is Depth (16) steps
/// of a 64-wide operand, stored depth-major (dst[k * Pitch + i]). Element s of thread tid is
/// e = tid + 128 s. Rows along depth: source rows of 64 tokens, contiguous along the depth
/// (features of Q or K): e -> (i = e / 16, k = e % 16). Depth along rows: source rows are the
/// depth (tokens, or features of S), contiguous along the 64 columns: e -> (k = e / 64,
/// i = e % 64). Both read consecutive addresses with consecutive threads; out of range is 0.
/// </summary>
internal static class TileStaging
{
    public const int Threads = 128, Tile = 64, Depth = 16, Pitch = Tile + 4;

    /// <summary>src[first + i * stride + k0 + k] for i &lt; rows, k0 + k &lt; depth.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Slice8 RowsAlongDepth(ArrayView<float> src, long first, int stride, int rows,
        int k0, int depth, int tid) => new(
        RowElement(src, first, stride, rows, k0, depth, tid),
        RowElement(src, first, stride, rows, k0, depth, tid + Threads),
        RowElement(src, first, stride, rows, k0, depth, tid + 2 * Threads),
        RowElement(src, first, stride, rows, k0, depth, tid + 3 * Threads),
        RowElement(src, first, stride, rows, k0, depth, tid + 4 * Threads),
        RowElement(src, first, stride, rows, k0, depth, tid + 5 * Threads),
        RowElement(src, first, stride, rows, k0, depth, tid + 6 * Threads),
        RowElement(src, first, stride, rows, k0, depth, tid + 7 * Threads));

    /// <summary>src[first + (k0 + k) * stride + c0 + i] for k0 + k &lt; depth, c0 + i &lt;
    /// columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Slice8 DepthAlongRows(ArrayView<float> src, long first, int stride, int depth,
        int k0, int columns, int c0, int tid) => new(
        DepthElement(src, first, stride, depth, k0, columns, c0, tid),
        DepthElement(src, first, stride, depth, k0, columns, c0, tid + Threads),
        DepthElement(src, first, stride, depth, k0, columns, c0, tid + 2 * Threads),
        DepthElement(src, first, stride, depth, k0, columns, c0, tid + 3 * Threads),
        DepthElement(src, first, stride, depth, k0, columns, c0, tid + 4 * Threads),
        DepthElement(src, first, stride, depth, k0, columns, c0, tid + 5 * Threads),
        DepthElement(src, first, stride, depth, k0, columns, c0, tid + 6 * Threads),
        DepthElement(src, first, stride, depth, k0, columns, c0, tid + 7 * Threads));

    /// <summary>Stores a <see cref="RowsAlongDepth"/> slice depth-major.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreRowsAlongDepth(ArrayView<float> dst, Slice8 v, int tid)
    {
        dst[RowSlot(tid)] = v.V0;
        dst[RowSlot(tid + Threads)] = v.V1;
        dst[RowSlot(tid + 2 * Threads)] = v.V2;
        dst[RowSlot(tid + 3 * Threads)] = v.V3;
        dst[RowSlot(tid + 4 * Threads)] = v.V4;
        dst[RowSlot(tid + 5 * Threads)] = v.V5;
        dst[RowSlot(tid + 6 * Threads)] = v.V6;
        dst[RowSlot(tid + 7 * Threads)] = v.V7;
    }

    /// <summary>Stores a <see cref="DepthAlongRows"/> slice depth-major.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreDepthAlongRows(ArrayView<float> dst, Slice8 v, int tid)
    {
        // e = tid + 128 s: k = e / 64, i = e % 64, so the slot is e / 64 * Pitch + e % 64.
        dst[DepthSlot(tid)] = v.V0;
        dst[DepthSlot(tid + Threads)] = v.V1;
        dst[DepthSlot(tid + 2 * Threads)] = v.V2;
        dst[DepthSlot(tid + 3 * Threads)] = v.V3;
        dst[DepthSlot(tid + 4 * Threads)] = v.V4;
        dst[DepthSlot(tid + 5 * Threads)] = v.V5;
        dst[DepthSlot(tid + 6 * Threads)] = v.V6;
        dst[DepthSlot(tid + 7 * Threads)] = v.V7;
    }

    /// <summary>The depth step of element s (0..7) of a <see cref="DepthAlongRows"/> slice of
    /// thread tid.</summary>
    public static int DepthOf(int tid, int s) => (tid + s * Threads) / Tile;

    private static float RowElement(ArrayView<float> src, long first, int stride, int rows,
        int k0, int depth, int e)
    {
        int i = e / Depth, k = k0 + e % Depth;
        return i < rows && k < depth ? src[first + (long)i * stride + k] : 0f;
    }

    private static float DepthElement(ArrayView<float> src, long first, int stride, int depth,
        int k0, int columns, int c0, int e)
    {
        int k = k0 + e / Tile, c = c0 + e % Tile;
        return k < depth && c < columns ? src[first + (long)k * stride + c] : 0f;
    }

    private static int RowSlot(int e) => e % Depth * Pitch + e / Depth;

    private static int DepthSlot(int e) => e / Tile * Pitch + e % Tile;
}
