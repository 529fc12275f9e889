using ILGPU;
using ILGPU.Algorithms;
using Managed.Kernels.Layouts;

namespace Managed.Models;

/// <summary>The kernels of <see cref="IlgpuBlocks"/> (one thread per index).</summary>
internal static class IlgpuKernels
{
    /// <summary>Row r of y = RMSNorm(row r of x), in fp32 as on the host.</summary>
    public static void RmsNorm(Index1D r, ArrayView<float> x, ArrayView<float> y,
        ArrayView<float> w, int width, float eps)
    {
        long row = (long)r.X * width;
        float sum = 0;
        for (int i = 0; i < width; i++)
            sum += x[row + i] * x[row + i];
        float scale = 1f / XMath.Sqrt(sum / width + eps);
        for (int i = 0; i < width; i++)
            y[row + i] = x[row + i] * scale * w[i];
    }

    /// <summary>Row r of y = LayerNorm(row r of x).</summary>
    public static void LayerNorm(Index1D r, ArrayView<float> x, ArrayView<float> y,
        ArrayView<float> w, ArrayView<float> b, int width, float eps)
    {
        long row = (long)r.X * width;
        float sum = 0;
        for (int i = 0; i < width; i++)
            sum += x[row + i];
        float mean = sum / width, squares = 0;
        for (int i = 0; i < width; i++)
            squares += (x[row + i] - mean) * (x[row + i] - mean);
        float scale = 1f / XMath.Sqrt(squares / width + eps);
        for (int i = 0; i < width; i++)
            y[row + i] = (x[row + i] - mean) * scale * w[i] + b[i];
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
