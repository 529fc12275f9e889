using ILGPU;

namespace Managed.Kernels.Recurrent;

/// <summary>The sizes of one EMA launch.</summary>
internal readonly struct EmaParams(EmaShape shape)
{
    public readonly int Batch = shape.Batch, Length = shape.Length, Dim = shape.Dim,
        EmaDims = shape.EmaDims;
}

/// <summary>
/// Mega's multi-dimensional damped EMA as a recurrence: one thread per (batch, channel) walks
/// the sequence with its <see cref="EmaParams.EmaDims"/> states in registers. The
/// coefficients come packed as [a (dim, emaDims), q (dim, emaDims), e (dim, emaDims),
/// omega (dim)] with a = alpha beta, q = 1 - alpha delta, e = eta (see
/// <see cref="MultiDimensionalEma"/>): h_j = a_j x_t + q_j h_j, y_t = sum_j e_j h_j + omega x_t.
/// </summary>
internal static class EmaKernel
{
    /// <summary>Largest number of EMA dims per channel (the states live in local memory).
    /// </summary>
    public const int MaxEmaDims = 32;

    /// <summary>Grid: ceil(batch dim / threads) groups; x and output (batch, length, dim).
    /// </summary>
    public static void Run(ArrayView<float> x, ArrayView<float> coefficients,
        ArrayView<float> output, EmaParams p)
    {
        var h = LocalMemory.Allocate<float>(MaxEmaDims);
        int item = Grid.GlobalIndex.X;
        if (item >= p.Batch * p.Dim) return;
        int b = item / p.Dim, c = item % p.Dim, m = p.EmaDims;
        long plane = (long)p.Dim * m, cBase = (long)c * m;
        float omega = coefficients[3 * plane + c];
        for (int j = 0; j < m; j++) h[j] = 0f;
        long row = (long)b * p.Length * p.Dim + c;
        for (int t = 0; t < p.Length; t++, row += p.Dim)
        {
            float xv = x[row], y = omega * xv;
            for (int j = 0; j < m; j++)
            {
                float hj = coefficients[cBase + j] * xv
                    + coefficients[plane + cBase + j] * h[j];
                h[j] = hj;
                y += coefficients[2 * plane + cBase + j] * hj;
            }
            output[row] = y;
        }
    }
}
