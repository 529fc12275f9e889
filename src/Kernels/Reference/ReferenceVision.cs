using Managed.Kernels.LinearAttention;

namespace Managed.Kernels.Reference;

/// <summary>Helpers of the vision mechanisms' fp64 references.</summary>
public static class ReferenceVision
{
    /// <summary>O = W V per (batch, head): W (batch, heads, length, length), V (batch,
    /// kvHeads, length, valueDim), query head h reading KV head h / (heads / kvHeads).
    /// </summary>
    public static double[] Mix(LinearAttentionShape s, double[] w, double[] v)
    {
        int n = s.Length, dv = s.ValueDim, group = s.Heads / s.KvHeads;
        var o = new double[s.OutputLength];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        {
            long bh = (long)b * s.Heads + h, kv = (long)b * s.KvHeads + h / group;
            for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double wij = w[(bh * n + i) * n + j];
                for (int c = 0; c < dv; c++)
                    o[(bh * n + i) * dv + c] += wij * v[(kv * n + j) * dv + c];
            }
        }
        return o;
    }

    /// <summary>A depth-wise k x k convolution, zero padded, over the height x width grid of
    /// the tokens prefix.. of every item of x (items / group input items, prefix + height x
    /// width tokens, dim); items of the output = x's items times group; tokens before prefix
    /// get 0. Weights (wItems, dim, k, k), bias (wItems, dim) or empty; the weights' item is the
    /// input item (perItem) or its head (input item mod heads).</summary>
    public static double[] DepthwiseConv(int items, int heads, int height, int width, int dim,
        int prefix, double[] x, int kernel, float[] weights, float[] bias, bool perItem,
        int group = 1)
    {
        int length = prefix + height * width, r = kernel / 2;
        var o = new double[(long)items * length * dim];
        for (int it = 0; it < items; it++)
        {
            int input = it / group, wItem = perItem ? input : input % heads;
            for (int y = 0; y < height; y++)
            for (int xx = 0; xx < width; xx++)
            for (int c = 0; c < dim; c++)
            {
                double sum = bias.Length == 0 ? 0 : bias[wItem * dim + c];
                for (int dy = -r; dy <= r; dy++)
                for (int dx = -r; dx <= r; dx++)
                {
                    int yy = y + dy, xs = xx + dx;
                    if (yy < 0 || yy >= height || xs < 0 || xs >= width) continue;
                    sum += weights[((wItem * dim + c) * kernel + dy + r) * kernel + dx + r]
                        * x[((long)input * length + prefix + yy * width + xs) * dim + c];
                }
                o[((long)it * length + prefix + y * width + xx) * dim + c] = sum;
            }
        }
        return o;
    }

    /// <summary>erf(x) in double: its Maclaurin series for |x| &lt; 3, the asymptotic series of
    /// erfc beyond (within 1e-8 absolute).</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 3)
        {
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 200 && Math.Abs(term) > 1e-17 * Math.Abs(sum); n++)
            {
                term *= -x2 / n;
                sum += term / (2 * n + 1);
            }
            return Math.Sign(x) * 2 / Math.Sqrt(Math.PI) * sum;
        }
        double inv = 1 / (2 * ax * ax), series = 1, t = 1;
        for (int n = 1; n < 10; n++)
        {
            t *= -(2 * n - 1) * inv;
            series += t;
        }
        return Math.Sign(x) * (1 - Math.Exp(-ax * ax) / (ax * Math.Sqrt(Math.PI)) * series);
    }
}
