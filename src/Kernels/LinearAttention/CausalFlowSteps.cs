using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.LinearAttention;

/// <summary>out[e] = 1.</summary>
internal readonly struct OnesStep : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d) => 1f;
}

/// <summary>out[item, i] = (i + 1) / a[item, i] over (items, rows): the token count over a
/// prefix flow.</summary>
internal readonly struct CountRatioStep(int rows) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d) => (e % rows + 1) / a[e];
}

/// <summary>out[item, i] = a[item, i] / (i + 1) over (items, rows).</summary>
internal readonly struct CountDivideStep(int rows) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d) => a[e] / (e % rows + 1);
}

/// <summary>out[row, col] = a[row, col] * b[row] over (rows, dim).</summary>
internal readonly struct RowScaleStep(int dim) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d) => a[e] * b[e / dim];
}

internal delegate void FlowCompetitionLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> outHat, ArrayView<float> weight, int items, int rows);

/// <summary>
/// Causal Flow-Attention's competition, a prefix softmax along each sequence:
/// w[item, j] = exp(Ohat_j) / sum_{t&lt;=j} exp(Ohat_t) * (j + 1). One thread per (sequence,
/// head) walks its tokens with a running maximum and sum (the walk is O(N) per thread: the
/// flows around it cost O(N F) per head).
/// </summary>
internal static class FlowCompetitionKernel
{
    private const int Threads = 64;

    internal static readonly MethodInfo Method =
        typeof(FlowCompetitionKernel).GetMethod(nameof(Kernel))!;

    public static void Kernel(ArrayView<float> outHat, ArrayView<float> weight, int items,
        int rows)
    {
        int item = Grid.IdxX * Threads + Group.IdxX;
        if (item >= items) return;
        long first = (long)item * rows;
        float m = float.NegativeInfinity, l = 0f;
        for (int j = 0; j < rows; j++)
        {
            float a = outHat[first + j], mNew = XMath.Max(m, a);
            l = l * MathF.Exp(m - mNew) + MathF.Exp(a - mNew);
            m = mNew;
            weight[first + j] = MathF.Exp(a - m) / l * (j + 1);
        }
    }

    /// <summary>Enqueues the walk of every sequence on the device's stream.</summary>
    public static void Run(ComputeDevice device, ArrayView<float> outHat, ArrayView<float> weight,
        int items, int rows)
    {
        if (items == 0 || rows == 0) return;
        var launch = device.Kernels.Get<FlowCompetitionLauncher>(Method);
        launch(device.Ilgpu.DefaultStream, new KernelConfig((items + Threads - 1) / Threads,
            Threads), outHat, weight, items, rows);
    }
}
