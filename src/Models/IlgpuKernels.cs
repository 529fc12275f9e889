using ILGPU;
using ILGPU.Algorithms;
using Managed.Kernels.Layouts;

namespace Managed.Models;

/// <summary>The kernels of <see cref="IlgpuBlocks"/>: one thread per index, a group per row
/// for the norms.</summary>
internal static class IlgpuKernels
{
    /// <summary>Threads of the norms' groups: one group per row, so a decode step's row
    /// (thousands of elements) is read by many lanes, not one.</summary>
    public const int NormThreads = 128;

    /// <summary>Row Grid.IdxX of y = RMSNorm(that row of x), in fp32 (a group per row).
    /// </summary>
    public static void RmsNorm(ArrayView<float> x, ArrayView<float> y, ArrayView<float> w,
        int width, float eps)
    {
        var partial = SharedMemory.Allocate<float>(NormThreads);
        int t = Group.IdxX;
        long row = (long)Grid.IdxX * width;
        float sum = 0;
        for (int i = t; i < width; i += NormThreads)
            sum += x[row + i] * x[row + i];
        float scale = 1f / XMath.Sqrt(GroupSum(partial, t, sum) / width + eps);
        for (int i = t; i < width; i += NormThreads)
            y[row + i] = x[row + i] * scale * w[i];
    }

    /// <summary>Row Grid.IdxX of y = LayerNorm(that row of x) (a group per row).</summary>
    public static void LayerNorm(ArrayView<float> x, ArrayView<float> y, ArrayView<float> w,
        ArrayView<float> b, int width, float eps)
    {
        var partial = SharedMemory.Allocate<float>(NormThreads);
        int t = Group.IdxX;
        long row = (long)Grid.IdxX * width;
        float sum = 0;
        for (int i = t; i < width; i += NormThreads)
            sum += x[row + i];
        float mean = GroupSum(partial, t, sum) / width, squares = 0;
        for (int i = t; i < width; i += NormThreads)
            squares += (x[row + i] - mean) * (x[row + i] - mean);
        float scale = 1f / XMath.Sqrt(GroupSum(partial, t, squares) / width + eps);
        for (int i = t; i < width; i += NormThreads)
            y[row + i] = (x[row + i] - mean) * scale * w[i] + b[i];
    }

    /// <summary>The sum of <paramref name="value"/> over the group (a tree in shared memory,
    /// which every ILGPU backend has); every thread gets it, and the memory is free again.
    /// </summary>
    private static float GroupSum(ArrayView<float> partial, int t, float value)
    {
        partial[t] = value;
        Group.Barrier();
        for (int s = NormThreads / 2; s > 0; s >>= 1)
        {
            if (t < s) partial[t] += partial[t + s];
            Group.Barrier();
        }
        float total = partial[0];
        Group.Barrier();
        return total;
    }

    /// <summary>Element (row, head, i &lt; half) of the rotate-half RoPE.</summary>
    public static void Rope(Index1D e, ArrayView<float> x, ArrayView<float> cos,
        ArrayView<float> sin, int heads, int half)
    {
        int i = e % half, rowHead = e / half, row = rowHead / heads;
        long at = (long)rowHead * 2 * half + i;
        float a = x[at], b = x[at + half], c = cos[row * half + i], s = sin[row * half + i];
        x[at] = a * c - b * s;
        x[at + half] = b * c + a * s;
    }

    /// <summary>gate[i] = act(gate[i]) · up[i].</summary>
    public static void GatedMul(Index1D i, ArrayView<float> gate, ArrayView<float> up,
        int activation) => gate[i] = Activations.Apply(gate[i], (Activation)activation) * up[i];

    /// <summary>x[i] = act(x[i]).</summary>
    public static void Activate(Index1D i, ArrayView<float> x, int activation) =>
        x[i] = Activations.Apply(x[i], (Activation)activation);

    /// <summary>Row r = t / heads, head h = t % heads of the output gate:
    /// attention[r, h, :] ·= σ(weight[h] · x[r] + bias[h]).</summary>
    public static void OutputGate(Index1D t, ArrayView<float> x, ArrayView<float> attention,
        ArrayView<float> weight, ArrayView<float> bias, int hidden, int heads, int dim)
    {
        int h = t % heads, r = t / heads;
        long row = (long)r * hidden, w = (long)h * hidden, at = (long)t.X * dim;
        float z = 0;
        for (int i = 0; i < hidden; i++)
            z += weight[w + i] * x[row + i];
        float g = Activations.Sigmoid(z + bias[h]);
        for (int i = 0; i < dim; i++)
            attention[at + i] *= g;
    }

    /// <summary>x[i] += y[i].</summary>
    public static void Add(Index1D i, ArrayView<float> x, ArrayView<float> y) => x[i] += y[i];

    /// <summary>dst (heads, rows, dim) from src (rows, heads, dim).</summary>
    public static void ToHeadMajor(Index1D e, ArrayView<float> src, ArrayView<float> dst,
        int rows, int heads, int dim)
    {
        int i = e % dim, rh = e / dim, h = rh % heads, r = rh / heads;
        dst[((long)h * rows + r) * dim + i] = src[e];
    }

    /// <summary>dst (rows, heads, dim) from src (heads, rows, dim).</summary>
    public static void FromHeadMajor(Index1D e, ArrayView<float> src, ArrayView<float> dst,
        int rows, int heads, int dim)
    {
        int i = e % dim, rh = e / dim, h = rh % heads, r = rh / heads;
        dst[e] = src[((long)h * rows + r) * dim + i];
    }

    /// <summary>Element e of y (m, width) = widen(table[ids[e / width], e % width]).</summary>
    public static void Gather<TElement, T>(Index1D e, ArrayView<T> table, ArrayView<int> ids,
        ArrayView<float> y, int width)
        where TElement : struct, IElement<T>
        where T : unmanaged =>
        y[e] = TElement.ToSingle(table[(long)ids[e / width] * width + e % width]);

    /// <summary>dst (heads, rows, dim) = narrow(src (rows, heads, dim)).</summary>
    public static void Pack<TElement, T>(Index1D e, ArrayView<float> src, ArrayView<T> dst,
        int rows, int heads, int dim)
        where TElement : struct, IElement<T>
        where T : unmanaged
    {
        int i = e % dim, rh = e / dim, h = rh % heads, r = rh / heads;
        dst[((long)h * rows + r) * dim + i] = TElement.FromSingle(src[e]);
    }
}
