using System.Numerics.Tensors;

namespace Managed.Models;

/// <summary>The blocks on host spans (TensorPrimitives SIMD within a row).</summary>
internal sealed class HostBlocks : Blocks
{
    public override void RmsNorm(Act x, Act y, Act weight, int rows, int width, float eps)
    {
        var xs = x.Span;
        var ys = y.Span;
        var w = weight.Span;
        for (int r = 0; r < rows; r++)
        {
            var row = xs.Slice(r * width, width);
            var output = ys.Slice(r * width, width);
            float meanSquare = TensorPrimitives.SumOfSquares(row) / width;
            TensorPrimitives.Multiply(row, 1f / MathF.Sqrt(meanSquare + eps), output);
            TensorPrimitives.Multiply(output, w, output);
        }
    }

    public override void LayerNorm(Act x, Act y, Act weight, Act bias, int rows, int width,
        float eps)
    {
        var xs = x.Span;
        var ys = y.Span;
        var w = weight.Span;
        var b = bias.Span;
        for (int r = 0; r < rows; r++)
        {
            var row = xs.Slice(r * width, width);
            var output = ys.Slice(r * width, width);
            float mean = TensorPrimitives.Sum(row) / width;
            TensorPrimitives.Subtract(row, mean, output);
            float variance = TensorPrimitives.SumOfSquares(output) / width;
            TensorPrimitives.Multiply(output, 1f / MathF.Sqrt(variance + eps), output);
            TensorPrimitives.FusedMultiplyAdd(output, w, b, output);
        }
    }

    public override void Rope(Act x, int rows, int heads, int dim, Act cos, Act sin)
    {
        var xs = x.Span;
        var c = cos.Span;
        var s = sin.Span;
        int half = dim / 2;
        for (int r = 0; r < rows; r++)
            RopeTable.RotateHalf(xs.Slice(r * heads * dim, heads * dim), dim,
                c.Slice(r * half, half), s.Slice(r * half, half));
    }

    public override void GatedMul(Act gate, Act up, long n, Activation activation)
    {
        var g = gate.Span[..(int)n];
        var u = up.Span[..(int)n];
        if (activation == Activation.Silu)
        {
            // silu(g) u = σ(g) (g u) in SIMD passes: the scalar exp was 5 % of a small
            // model's decode step. up is scratch after this block.
            TensorPrimitives.Multiply(u, g, u);
            TensorPrimitives.Sigmoid(g, g);
            TensorPrimitives.Multiply(g, u, g);
            return;
        }
        for (int i = 0; i < g.Length; i++)
            g[i] = Activations.Apply(g[i], activation) * u[i];
    }

    public override void Activate(Act x, long n, Activation activation)
    {
        var v = x.Span[..(int)n];
        for (int i = 0; i < v.Length; i++)
            v[i] = Activations.Apply(v[i], activation);
    }

    public override void OutputGate(Act x, Act attention, Act weight, Act bias, int rows,
        int hidden, int heads, int dim)
    {
        var xs = x.Span;
        var a = attention.Span;
        var w = weight.Span;
        var b = bias.Span;
        for (int r = 0; r < rows; r++)
        {
            var row = xs.Slice(r * hidden, hidden);
            for (int h = 0; h < heads; h++)
            {
                float g = Activations.Sigmoid(TensorPrimitives.Dot(row,
                    w.Slice(h * hidden, hidden)) + b[h]);
                var head = a.Slice((r * heads + h) * dim, dim);
                TensorPrimitives.Multiply(head, g, head);
            }
        }
    }

    public override void Add(Act x, Act y, long n) =>
        TensorPrimitives.Add(x.Span[..(int)n], y.Span[..(int)n], x.Span[..(int)n]);

    public override void ToHeadMajor(Act src, Act dst, int rows, int heads, int dim)
    {
        var s = src.Span;
        var d = dst.Span;
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
                s.Slice((r * heads + h) * dim, dim).CopyTo(d.Slice((h * rows + r) * dim, dim));
    }

    public override void FromHeadMajor(Act src, Act dst, int rows, int heads, int dim)
    {
        var s = src.Span;
        var d = dst.Span;
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
                s.Slice((h * rows + r) * dim, dim).CopyTo(d.Slice((r * heads + h) * dim, dim));
    }

    public override void Download(Act y, Span<float> destination) => y.Span.CopyTo(destination);

    public override void Synchronize() { }

    public override void Upload(ReadOnlySpan<float> source, Act y) => source.CopyTo(y.Span);
}

/// <summary>The scalar activations, shared by the host and the ILGPU kernels.</summary>
internal static class Activations
{
    /// <summary>σ(x) = 1 / (1 + e^−x).</summary>
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    /// <summary>act(x) as transformers defines each (silu as x·σ(x)).</summary>
    public static float Apply(float x, Activation activation) => activation switch
    {
        Activation.Silu => x / (1f + MathF.Exp(-x)),
        Activation.Gelu => 0.5f * x * (1f + Erf(x * 0.70710678118654752f)),
        Activation.GeluNew or Activation.GeluPytorchTanh =>
            0.5f * x * (1f + MathF.Tanh(0.7978845608028654f * (x + 0.044715f * x * x * x))),
        Activation.GeluFast =>
            0.5f * x * (1f + MathF.Tanh(0.7978845608f * x * (1f + 0.044715f * x * x))),
        Activation.QuickGelu => x / (1f + MathF.Exp(-1.702f * x)),
        _ => MathF.Max(x, 0f),
    };

    // Abramowitz–Stegun 7.1.26 is too coarse for 1e-4 parity; this is erf via erfc's
    // continued-fraction-free Chebyshev fit (Numerical Recipes erfcc, |error| < 1.2e-7).
    private static float Erf(float x)
    {
        float z = MathF.Abs(x);
        float t = 1f / (1f + 0.5f * z);
        float r = t * MathF.Exp(-z * z - 1.26551223f + t * (1.00002368f + t * (0.37409196f
            + t * (0.09678418f + t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f
            + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f)))))))));
        return x >= 0 ? 1f - r : r - 1f;
    }
}
