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
    private const int Pitch = Depth + 1, RowsPerThread = 8, ColsPerThread = 4;

    public static void Gemm<TElement, TStorage>(ArrayView<float> x, ArrayView<TStorage> w,
        ArrayView<float> bias, ArrayView<float> y, LinearParams p)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        var xs = SharedMemory.Allocate<float>(Tile * Pitch);
        var ws = SharedMemory.Allocate<float>(Tile * Pitch);
        var acc = LocalMemory.Allocate<float>(RowsPerThread * ColsPerThread);
        int tid = Group.IdxX, tx = tid % 16, ty = tid / 16;
        int tilesN = (p.N + Tile - 1) / Tile;
        int i0 = Grid.IdxX / tilesN * Tile, j0 = Grid.IdxX % tilesN * Tile;
        for (int a = 0; a < RowsPerThread * ColsPerThread; a++) acc[a] = 0f;
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
                float b0 = ws[tx * Pitch + kk], b1 = ws[(tx + 16) * Pitch + kk];
                float b2 = ws[(tx + 32) * Pitch + kk], b3 = ws[(tx + 48) * Pitch + kk];
                for (int a = 0; a < RowsPerThread; a++)
                {
                    float xv = xs[(ty + 8 * a) * Pitch + kk];
                    acc[a * 4] += xv * b0;
                    acc[a * 4 + 1] += xv * b1;
                    acc[a * 4 + 2] += xv * b2;
                    acc[a * 4 + 3] += xv * b3;
                }
            }
            Group.Barrier(); // the tiles are read before the next step overwrites them
        }
        for (int a = 0; a < RowsPerThread; a++)
        {
            int i = i0 + ty + 8 * a;
            if (i >= p.M) break;
            for (int b = 0; b < ColsPerThread; b++)
            {
                int j = j0 + tx + 16 * b;
                if (j < p.N)
                    y[(long)i * p.N + j] = acc[a * 4 + b] + (p.HasBias != 0 ? bias[j] : 0f);
            }
        }
    }
}
