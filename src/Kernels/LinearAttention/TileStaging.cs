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
/// Each thread computes one address and one bound per slice and steps them by constants (the
/// kernels are bound by instruction issue: per-element divisions, 64-bit products and checks
/// had made the staging a third of the instructions of a slice; removing them made the
/// chunked kernels 1.27-1.32x faster on the H200).
/// </summary>
internal static class TileStaging
{
    public const int Threads = 128, Tile = 64, Depth = 16, Pitch = Tile + 4;

    /// <summary>src[first + i * stride + k0 + k] for i &lt; rows, k0 + k &lt; depth. Thread tid
    /// reads column k = tid % 16 of rows tid / 16 + 8 s: one address, advanced by 8 rows per
    /// element (no division per element).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Slice8 RowsAlongDepth(ArrayView<float> src, long first, int stride, int rows,
        int k0, int depth, int tid)
    {
        int i = tid / Depth, k = k0 + tid % Depth;
        int live = k < depth ? rows - i : 0; // elements s < (live + 7) / 8 are in range
        long at = first + (long)i * stride + k, step = 8L * stride;
        return new(
            live > 0 ? src[at] : 0f,
            live > 8 ? src[at + step] : 0f,
            live > 16 ? src[at + 2 * step] : 0f,
            live > 24 ? src[at + 3 * step] : 0f,
            live > 32 ? src[at + 4 * step] : 0f,
            live > 40 ? src[at + 5 * step] : 0f,
            live > 48 ? src[at + 6 * step] : 0f,
            live > 56 ? src[at + 7 * step] : 0f);
    }

    /// <summary>src[first + (k0 + k) * stride + c0 + i] for k0 + k &lt; depth, c0 + i &lt;
    /// columns. Thread tid reads column c0 + tid % 64 of depth steps tid / 64 + 2 s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Slice8 DepthAlongRows(ArrayView<float> src, long first, int stride, int depth,
        int k0, int columns, int c0, int tid)
    {
        int k = k0 + tid / Tile, c = c0 + tid % Tile;
        int live = c < columns ? depth - k : 0; // elements s < (live + 1) / 2 are in range
        long at = first + (long)k * stride + c, step = 2L * stride;
        return new(
            live > 0 ? src[at] : 0f,
            live > 2 ? src[at + step] : 0f,
            live > 4 ? src[at + 2 * step] : 0f,
            live > 6 ? src[at + 3 * step] : 0f,
            live > 8 ? src[at + 4 * step] : 0f,
            live > 10 ? src[at + 5 * step] : 0f,
            live > 12 ? src[at + 6 * step] : 0f,
            live > 14 ? src[at + 7 * step] : 0f);
    }

    /// <summary>Stores a <see cref="RowsAlongDepth"/> slice depth-major: element s of thread
    /// tid is row tid / 16 + 8 s of depth step tid % 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreRowsAlongDepth(ArrayView<float> dst, Slice8 v, int tid)
    {
        int at = tid % Depth * Pitch + tid / Depth;
        dst[at] = v.V0;
        dst[at + 8] = v.V1;
        dst[at + 16] = v.V2;
        dst[at + 24] = v.V3;
        dst[at + 32] = v.V4;
        dst[at + 40] = v.V5;
        dst[at + 48] = v.V6;
        dst[at + 56] = v.V7;
    }

    /// <summary>Stores a <see cref="DepthAlongRows"/> slice depth-major: element s of thread
    /// tid is column tid % 64 of depth step tid / 64 + 2 s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreDepthAlongRows(ArrayView<float> dst, Slice8 v, int tid)
    {
        int at = tid / Tile * Pitch + tid % Tile;
        dst[at] = v.V0;
        dst[at + 2 * Pitch] = v.V1;
        dst[at + 4 * Pitch] = v.V2;
        dst[at + 6 * Pitch] = v.V3;
        dst[at + 8 * Pitch] = v.V4;
        dst[at + 10 * Pitch] = v.V5;
        dst[at + 12 * Pitch] = v.V6;
        dst[at + 14 * Pitch] = v.V7;
    }

    /// <summary>The depth step of element s (0..7) of a <see cref="DepthAlongRows"/> slice of
    /// thread tid.</summary>
    public static int DepthOf(int tid, int s) => (tid + s * Threads) / Tile;
}
