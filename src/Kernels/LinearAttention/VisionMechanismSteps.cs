using ILGPU;

namespace Managed.Kernels.LinearAttention;

/// <summary>MALA's combination, in place on o = phi(Q) S (batch, heads, length, valueDim):
/// (1 + 1 / m) o / N - m vbar with m = phi(q) . kbar; a = o, b = phi(Q) (batch, heads, length,
/// features), c = kbar (batch, kvHeads, features), d = vbar (batch, kvHeads, valueDim).</summary>
internal readonly struct MalaCombineStep(int length, int features, int valueDim, int group)
    : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        long row = e / valueDim;
        int col = (int)(e - row * valueDim);
        long item = row / length / group;
        float m = 0f;
        for (int f = 0; f < features; f++) m += b[row * features + f] * c[item * features + f];
        return (1f + 1f / m) * a[e] / length - m * d[item * valueDim + col];
    }
}

/// <summary>out[e] = a[e] * b[e]: an element-wise gate.</summary>
internal readonly struct MultiplyStep : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d) => a[e] * b[e];
}

/// <summary>L2ViT's global normalization, in place on o = phi(Q) S (batch, heads, length,
/// valueDim): tau_h o / max(phi(q) . z, floor); a = o, b = phi(Q), c = z (batch, kvHeads,
/// features), d = tau (heads).</summary>
internal readonly struct ClampedNormalizeStep(int length, int features, int valueDim,
    int group, int heads, float floor) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        long row = e / valueDim;
        long item = row / length / group;
        int head = (int)(row / length % heads);
        float dot = 0f;
        for (int f = 0; f < features; f++) dot += b[row * features + f] * c[item * features + f];
        return d[head] * a[e] / MathF.Max(dot, floor);
    }
}

/// <summary>
/// A depth-wise (per-channel) k x k convolution over the height x width token grid, zero
/// padded (stride 1, padding k / 2), written to an (items, length, dim) output: token t of
/// item i reads tokens prefix + (y', x') of input item i / group, channel c; tokens before
/// <c>prefix</c> (class tokens) get no convolution. out = [d[e] +] [bias +] sum w x, with
/// a = input (items / group, length, dim), b = weights (wItems, dim, k, k), c = bias
/// (wItems, dim), d = addend (items, length, dim); the weights' item is the input item
/// (<see cref="PerItem"/>: per-sample weights, InLine) or its head (input item mod heads,
/// L2ViT). <c>flags</c> combines <see cref="PerItem"/>, <see cref="HasBias"/> and
/// <see cref="HasAddend"/> (ints: a kernel parameter must be blittable, bool is not).
/// </summary>
internal readonly struct DepthwiseConvStep(int length, int dim, int height, int width,
    int kernel, int prefix, int group, int heads, int flags) : IElementStep
{
    public const int PerItem = 1, HasBias = 2, HasAddend = 4;

    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        long row = e / dim;
        int col = (int)(e - row * dim);
        long item = row / length;
        int t = (int)(row - item * length) - prefix;
        float sum = (flags & HasAddend) != 0 ? d[e] : 0f;
        if (t < 0) return sum;
        long input = item / group;
        long wItem = (flags & PerItem) != 0 ? input : input % heads;
        if ((flags & HasBias) != 0) sum += c[wItem * dim + col];
        int y = t / width, x = t - y * width, r = kernel / 2;
        long w0 = (wItem * dim + col) * kernel * kernel;
        long base0 = input * length + prefix;
        for (int dy = 0; dy < kernel; dy++)
        {
            int yy = y + dy - r;
            if (yy < 0 || yy >= height) continue;
            for (int dx = 0; dx < kernel; dx++)
            {
                int xx = x + dx - r;
                if (xx < 0 || xx >= width) continue;
                sum += b[w0 + dy * kernel + dx] * a[(base0 + yy * width + xx) * dim + col];
            }
        }
        return sum;
    }
}

/// <summary>The middle of L2ViT's local concentration module: out = gelu(a[e]) * b[ch] +
/// c[ch], the exact (erf) GELU then an inference-time batch norm folded to a per-channel scale
/// b and shift c (heads, dim), ch = (item mod heads, col) of an (items, length, dim) tensor.
/// </summary>
internal readonly struct GeluAffineStep(int length, int dim, int heads) : IElementStep
{
    public float Apply(long e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> d)
    {
        long row = e / dim;
        int col = (int)(e - row * dim);
        long ch = row / length % heads * dim + col;
        return VisionMath.Gelu(a[e]) * b[ch] + c[ch];
    }
}

/// <summary>Float helpers of the vision mechanisms, shared by the host loops and the
/// element steps.</summary>
internal static class VisionMath
{
    /// <summary>x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, the exact GELU.</summary>
    public static float Gelu(float x) => 0.5f * x * (1f + Erf(x * 0.70710678f));

    /// <summary>erf(x) by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
    /// </summary>
    public static float Erf(float x)
    {
        float s = x < 0f ? -1f : 1f, ax = MathF.Abs(x);
        float t = 1f / (1f + 0.3275911f * ax);
        float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t
            - 0.284496736f) * t + 0.254829592f) * t;
        return s * (1f - poly * MathF.Exp(-ax * ax));
    }

    /// <summary>The depth-wise convolution of <see cref="DepthwiseConvStep"/> on host spans
    /// (output (items, length, dim), every element written).</summary>
    public static void DepthwiseConv(ReadOnlySpan<float> input, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> bias, ReadOnlySpan<float> addend, Span<float> output, int items,
        int length, int dim, int height, int width, int kernel, int prefix, int group, int heads,
        bool perItem)
    {
        int r = kernel / 2;
        for (int item = 0; item < items; item++)
        {
            int inItem = item / group, wItem = perItem ? inItem : inItem % heads;
            for (int tok = 0; tok < length; tok++)
            {
                int t = tok - prefix, y = t < 0 ? 0 : t / width, x = t < 0 ? 0 : t - y * width;
                for (int col = 0; col < dim; col++)
                {
                    long e = ((long)item * length + tok) * dim + col;
                    float sum = addend.IsEmpty ? 0f : addend[(int)e];
                    if (t >= 0)
                    {
                        if (!bias.IsEmpty) sum += bias[wItem * dim + col];
                        int w0 = (wItem * dim + col) * kernel * kernel;
                        for (int dy = 0; dy < kernel; dy++)
                        {
                            int yy = y + dy - r;
                            if (yy < 0 || yy >= height) continue;
                            for (int dx = 0; dx < kernel; dx++)
                            {
                                int xx = x + dx - r;
                                if (xx < 0 || xx >= width) continue;
                                sum += weights[w0 + dy * kernel + dx]
                                    * input[((inItem * length + prefix + yy * width + xx) * dim)
                                        + col];
                            }
                        }
                    }
                    output[(int)e] = sum;
                }
            }
        }
    }
}
