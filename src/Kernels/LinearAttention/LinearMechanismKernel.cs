using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.LinearAttention;

/// <summary>One output element of an element-wise step of a linear mechanism: a pure function
/// of the element index and up to four input views (a reduction over a row is a loop inside
/// it). Used by the device-side combination steps of <see cref="InLineAttention"/> and
/// <see cref="FlowAttention"/>.</summary>
internal interface IElementStep
{
    /// <summary>The value of output element <paramref name="e"/>.</summary>
    float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d);
}

internal delegate void ElementStepLauncher<TStep>(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d,
    ArrayView<float> output, long count, TStep step)
    where TStep : struct, IElementStep;

/// <summary>
/// The element-wise combination steps of the linear mechanisms: one kernel, generic over the
/// step struct, one thread per output element. output may be one of the inputs when the step
/// reads only element e of it.
/// </summary>
internal static class LinearMechanismKernel
{
    public const int Threads = 128;

    /// <summary>output[e] = step.Apply(e, a, b, c, d) for e &lt; count.</summary>
    public static void Kernel<TStep>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d, ArrayView<float> output, long count, TStep step)
        where TStep : struct, IElementStep
    {
        long e = (long)Grid.IdxX * Threads + Group.IdxX;
        if (e >= count) return;
        output[e] = step.Apply(e, a, b, c, d);
    }

    /// <summary>Enqueues one step over output.Length elements on the device's stream.</summary>
    public static void Run<TStep>(ComputeDevice device, TStep step, ArrayView<float> output,
        ArrayView<float> a, ArrayView<float> b = default, ArrayView<float> c = default,
        ArrayView<float> d = default)
        where TStep : struct, IElementStep
    {
        long count = output.Length;
        if (count == 0) return;
        var config = new KernelConfig(checked((int)((count + Threads - 1) / Threads)), Threads);
        var launch = device.Kernels.Get<ElementStepLauncher<TStep>>(Methods<TStep>.Kernel);
        launch(device.Ilgpu.DefaultStream, config, a, b, c, d, output, count, step);
    }

    internal static class Methods<TStep> where TStep : struct, IElementStep
    {
        public static readonly MethodInfo Kernel = typeof(LinearMechanismKernel)
            .GetMethod(nameof(LinearMechanismKernel.Kernel))!.MakeGenericMethod(typeof(TStep));
    }
}

/// <summary>out[item, c] = scale * sum_r a[(item * rows + r) * dim + c]: a column sum (or
/// mean) over the rows of every item of an (items, rows, dim) tensor.</summary>
internal readonly struct ColumnSumStep(int rows, int dim, float scale) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        long item = e / dim;
        int col = (int)(e - item * dim);
        float sum = 0f;
        long at = item * rows * dim + col;
        for (int r = 0; r < rows; r++, at += dim) sum += a[at];
        return sum * scale;
    }
}

/// <summary>
/// out[row] = a[row, :] . b[item(row), :]: the dot product of each (rows of length dim) row of
/// a with the vector of its item, item = (row / length) / group (query heads of a KV head
/// share it).
/// </summary>
internal readonly struct RowDotStep(int length, int dim, int group) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        long item = e / length / group;
        float sum = 0f;
        for (int f = 0; f < dim; f++) sum += a[e * dim + f] * b[item * dim + f];
        return sum;
    }
}

/// <summary>InLine's combination, in place on the output o (batch, heads, length, valueDim):
/// o + (1 - phi(q) . z) vbar, with a = o, b = phi(Q) (batch, heads, length, features),
/// c = z (batch, kvHeads, features), d = vbar (batch, kvHeads, valueDim).</summary>
internal readonly struct InLineCombineStep(int length, int features, int valueDim, int group)
    : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        long row = e / valueDim;
        int col = (int)(e - row * valueDim);
        long item = row / length / group;
        float dot = 0f;
        for (int f = 0; f < features; f++) dot += b[row * features + f] * c[item * features + f];
        return a[e] + (1f - dot) * d[item * valueDim + col];
    }
}

/// <summary>out[e] = sigmoid(a[e]).</summary>
internal readonly struct SigmoidStep : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d) => 1f / (1f + MathF.Exp(-a[e]));
}

/// <summary>out[item, c] = sum_r a[item, r, c] / b[item, r] over the rows of an (items, rows,
/// dim) tensor a with per-row divisors b (items, rows).</summary>
internal readonly struct WeightedColumnSumStep(int rows, int dim) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        long item = e / dim;
        int col = (int)(e - item * dim);
        float sum = 0f;
        for (int r = 0; r < rows; r++)
            sum += a[(item * rows + r) * dim + col] / b[item * rows + r];
        return sum;
    }
}

/// <summary>out[item] = log sum_r exp(a[item, r]) over the rows of an (items, rows) tensor,
/// max-shifted.</summary>
internal readonly struct LogSumExpStep(int rows) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        float max = float.NegativeInfinity;
        for (int r = 0; r < rows; r++) max = MathF.Max(max, a[e * rows + r]);
        float sum = 0f;
        for (int r = 0; r < rows; r++) sum += MathF.Exp(a[e * rows + r] - max);
        return max + MathF.Log(sum);
    }
}

/// <summary>Flowformer's competition: out[item, r, col] = exp(a[item, r] - c[item]) * rows *
/// b[item, r, col], with a the conserved outgoing flow (items, rows), c its log-sum-exp per
/// item (so the factor is softmax_r(a) * rows) and b = V (items, rows, dim).</summary>
internal readonly struct CompetitionStep(int rows, int dim) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        long row = e / dim;
        return MathF.Exp(a[row] - c[row / rows]) * rows * b[e];
    }
}

/// <summary>Flowformer's allocation, in place on the output o (items, rows, dim):
/// o * sigmoid(b[row] * ratio), b the conserved incoming flow (items, rows).</summary>
internal readonly struct AllocationStep(int dim, float ratio) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d) => a[e] / (1f + MathF.Exp(-b[e / dim] * ratio));
}
