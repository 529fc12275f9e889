using ILGPU;
using Managed.Kernels.Layouts;

namespace Managed.Kernels.Matmul;

/// <summary>
/// The prefill-shape kernel: a group of 128 threads computes a 64 x 64 tile of y. Each step
/// stages a 64 x 16 block of x and of W (widened as it is loaded, zeros past the edges) in
/// shared memory with coalesced loads along k; thread (ty, tx) of a 8 x 16 grid then
/// accumulates rows ty + 8a (a &lt; 8) and columns tx + 16b (b &lt; 4) of the tile: 32
/// multiply-adds per 12 shared loads. Rows are padded to 17 floats so the column reads of
/// a warp hit distinct banks.
/// </summary>
internal static class GemmKernel
{
    public const int Threads = 128, Tile = 64, Depth = 16;
    private const int Pitch = Depth + 1;

    public static void Gemm<TElement, TStorage>(ArrayView<float> x, ArrayView<TStorage> w,
        ArrayView<float> bias, ArrayView<float> y, LinearParams p)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        var xs = SharedMemory.Allocate<float>(Tile * Pitch);
        var ws = SharedMemory.Allocate<float>(Tile * Pitch);
        int tid = Group.IdxX, tx = tid % 16, ty = tid / 16;
        int tilesN = (p.N + Tile - 1) / Tile;
        int i0 = Grid.IdxX / tilesN * Tile, j0 = Grid.IdxX % tilesN * Tile;
        // Accumulators as named values (not a local array), so they stay in registers.
        Row4 r0 = default, r1 = default, r2 = default, r3 = default;
        Row4 r4 = default, r5 = default, r6 = default, r7 = default;
        for (int k0 = 0; k0 < p.K; k0 += Depth)
        {
            for (int s = 0; s < Tile * Depth / Threads; s++)
            {
                int e = tid + Threads * s, r = e / Depth, c = e % Depth;
                int kk = k0 + c, i = i0 + r, j = j0 + r;
                bool inK = kk < p.K;
                xs[r * Pitch + c] = inK && i < p.M ? x[(long)i * p.K + kk] : 0f;
                ws[r * Pitch + c] = inK && j < p.N
                    ? TElement.ToSingle(w[(long)j * p.K + kk]) : 0f;
            }
            Group.Barrier();
            for (int kk = 0; kk < Depth; kk++)
            {
                var b = new Row4(ws[tx * Pitch + kk], ws[(tx + 16) * Pitch + kk],
                    ws[(tx + 32) * Pitch + kk], ws[(tx + 48) * Pitch + kk]);
                int at = ty * Pitch + kk;
                r0 = Row4.Fma(xs[at], b, r0);
                r1 = Row4.Fma(xs[at + 8 * Pitch], b, r1);
                r2 = Row4.Fma(xs[at + 16 * Pitch], b, r2);
                r3 = Row4.Fma(xs[at + 24 * Pitch], b, r3);
                r4 = Row4.Fma(xs[at + 32 * Pitch], b, r4);
                r5 = Row4.Fma(xs[at + 40 * Pitch], b, r5);
                r6 = Row4.Fma(xs[at + 48 * Pitch], b, r6);
                r7 = Row4.Fma(xs[at + 56 * Pitch], b, r7);
            }
            Group.Barrier(); // the tiles are read before the next step overwrites them
        }
        Store(y, bias, p, i0 + ty, j0 + tx, r0);
        Store(y, bias, p, i0 + ty + 8, j0 + tx, r1);
        Store(y, bias, p, i0 + ty + 16, j0 + tx, r2);
        Store(y, bias, p, i0 + ty + 24, j0 + tx, r3);
        Store(y, bias, p, i0 + ty + 32, j0 + tx, r4);
        Store(y, bias, p, i0 + ty + 40, j0 + tx, r5);
        Store(y, bias, p, i0 + ty + 48, j0 + tx, r6);
        Store(y, bias, p, i0 + ty + 56, j0 + tx, r7);
    }

    /// <summary>Row i of y at columns j, j + 16, j + 32, j + 48 (those inside y), plus bias.
    /// </summary>
    private static void Store(ArrayView<float> y, ArrayView<float> bias, LinearParams p, int i,
        int j, Row4 r)
    {
        if (i >= p.M) return;
        long at = (long)i * p.N;
        if (j < p.N) y[at + j] = r.C0 + (p.HasBias != 0 ? bias[j] : 0f);
        if (j + 16 < p.N) y[at + j + 16] = r.C1 + (p.HasBias != 0 ? bias[j + 16] : 0f);
        if (j + 32 < p.N) y[at + j + 32] = r.C2 + (p.HasBias != 0 ? bias[j + 32] : 0f);
        if (j + 48 < p.N) y[at + j + 48] = r.C3 + (p.HasBias != 0 ? bias[j + 48] : 0f);
    }
}

/// <summary>Four accumulators of one row of a thread's GEMM tile (a value, so ILGPU keeps
/// it in registers).</summary>
internal readonly record struct Row4(float C0, float C1, float C2, float C3)
{
    /// <summary>acc + x * b, lane by lane.</summary>
    public static Row4 Fma(float x, Row4 b, Row4 acc) =>
        new(acc.C0 + x * b.C0, acc.C1 + x * b.C1, acc.C2 + x * b.C2, acc.C3 + x * b.C3);
}
