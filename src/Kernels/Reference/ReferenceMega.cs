using Managed.Kernels.Recurrent;

namespace Managed.Kernels.Reference;

/// <summary>
/// Mega in double precision (Ma et al., "Mega: Moving Average Equipped Gated Attention"),
/// written from the paper's equations and sharing no code with
/// <see cref="MultiDimensionalEma"/> or <see cref="MegaAttention"/>: the EMA as its
/// recurrence and as the causal convolution with its kernel, and the whole layer with naive
/// products and an explicit softmax per query over its chunk.
/// </summary>
public static class ReferenceMega
{
    /// <summary>The EMA by its recurrence: u = beta x, h_t = alpha u_t + (1 - alpha delta)
    /// h_(t-1), y_t = sum_j eta_j h_t^(j) + omega x_t (omega empty: no residual); x and the
    /// result (batch, length, dim), the parameters (dim, emaDims).</summary>
    public static double[] EmaRecurrence(EmaShape shape, ReadOnlySpan<double> x,
        ReadOnlySpan<double> alpha, ReadOnlySpan<double> delta, ReadOnlySpan<double> beta,
        ReadOnlySpan<double> eta, ReadOnlySpan<double> omega)
    {
        int n = shape.Length, d = shape.Dim, m = shape.EmaDims;
        var y = new double[shape.SequenceLength];
        var h = new double[m];
        for (int b = 0; b < shape.Batch; b++)
            for (int c = 0; c < d; c++)
            {
                Array.Clear(h);
                for (int t = 0; t < n; t++)
                {
                    int at = (b * n + t) * d + c;
                    double sum = omega.IsEmpty ? 0 : omega[c] * x[at];
                    for (int j = 0; j < m; j++)
                    {
                        int p = c * m + j;
                        double u = beta[p] * x[at];
                        h[j] = alpha[p] * u + (1 - alpha[p] * delta[p]) * h[j];
                        sum += eta[p] * h[j];
                    }
                    y[at] = sum;
                }
            }
        return y;
    }

    /// <summary>The EMA as a causal convolution: y_t = sum_(s &lt;= t) K_(t-s) x_s + omega x_t,
    /// K_l = sum_j eta_j alpha_j beta_j (1 - alpha_j delta_j)^l built term by term with
    /// Math.Pow (the released code's FFT form, evaluated directly).</summary>
    public static double[] EmaConvolution(EmaShape shape, ReadOnlySpan<double> x,
        ReadOnlySpan<double> alpha, ReadOnlySpan<double> delta, ReadOnlySpan<double> beta,
        ReadOnlySpan<double> eta, ReadOnlySpan<double> omega)
    {
        int n = shape.Length, d = shape.Dim, m = shape.EmaDims;
        var kernel = new double[n];
        var y = new double[shape.SequenceLength];
        for (int c = 0; c < d; c++)
        {
            for (int l = 0; l < n; l++)
            {
                double sum = 0;
                for (int j = 0; j < m; j++)
                {
                    int p = c * m + j;
                    sum += eta[p] * alpha[p] * beta[p] * Math.Pow(1 - alpha[p] * delta[p], l);
                }
                kernel[l] = sum;
            }
            for (int b = 0; b < shape.Batch; b++)
                for (int t = 0; t < n; t++)
                {
                    double sum = omega.IsEmpty ? 0 : omega[c] * x[(b * n + t) * d + c];
                    for (int s = 0; s <= t; s++) sum += kernel[t - s] * x[(b * n + s) * d + c];
                    y[((long)b * n + t) * d + c] = sum;
                }
        }
        return y;
    }

    /// <summary>The Mega layer of <see cref="MegaAttention"/> on x (batch, length, dim), the
    /// weights widened from float; <paramref name="chunkSize"/> null: full causal attention
    /// (no chunks).</summary>
    public static double[] Layer(MegaShape shape, ReadOnlySpan<float> x, MegaWeights weights,
        int? chunkSize)
    {
        int bsz = shape.Batch, n = shape.Length, d = shape.Dim, z = shape.ZDim,
            v = shape.HDim, rows = bsz * n;
        var xs = Wide(x);
        var ema = EmaRecurrence(shape.Ema, xs, Wide(weights.EmaAlpha), Wide(weights.EmaDelta),
            Wide(weights.EmaBeta), Wide(weights.EmaEta), Wide(weights.EmaOmega));
        var xp = Map(ema, Silu);
        var val = Map(Affine(xs, rows, d, weights.ValueWeight, weights.ValueBias, v), Silu);
        var zz = Map(Affine(xp, rows, d, weights.ZWeight, weights.ZBias, z), Silu);
        var q = new double[(long)rows * z];
        var k = new double[(long)rows * z];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < z; c++)
            {
                double zc = zz[(long)r * z + c];
                q[(long)r * z + c] = zc * weights.QkScale[c] + weights.QkOffset[c];
                k[(long)r * z + c] = zc * weights.QkScale[z + c] + weights.QkOffset[z + c];
            }

        // O = softmax(Q K^T / sqrt(z) + b_rel) V over the keys of the query's chunk, s <= t.
        var o = new double[(long)rows * v];
        int radius = (weights.RelativeBias.Length - 1) / 2;
        double scale = 1 / Math.Sqrt(z);
        var logits = new double[n];
        for (int b = 0; b < bsz; b++)
            for (int t = 0; t < n; t++)
            {
                int start = chunkSize is { } c0 ? t / c0 * c0 : 0;
                double max = double.NegativeInfinity;
                for (int s = start; s <= t; s++)
                {
                    double dot = 0;
                    for (int c = 0; c < z; c++)
                        dot += q[((long)b * n + t) * z + c] * k[((long)b * n + s) * z + c];
                    logits[s] = dot * scale + weights.RelativeBias[radius + s - t];
                    max = Math.Max(max, logits[s]);
                }
                double sum = 0;
                for (int s = start; s <= t; s++) sum += Math.Exp(logits[s] - max);
                for (int s = start; s <= t; s++)
                {
                    double w = Math.Exp(logits[s] - max) / sum;
                    for (int c = 0; c < v; c++)
                        o[((long)b * n + t) * v + c] += w * val[((long)b * n + s) * v + c];
                }
            }

        var gamma = Map(Affine(xp, rows, d, weights.GammaWeight, weights.GammaBias, v), Silu);
        var phi = Map(Affine(xp, rows, d, weights.PhiWeight, weights.PhiBias, d),
            a => 1 / (1 + Math.Exp(-a)));
        var go = new double[o.Length];
        for (long i = 0; i < o.Length; i++) go[i] = gamma[i] * o[i];
        var hx = Affine(xp, rows, d, weights.HxWeight, weights.HxBias, d);
        var hu = Affine(go, rows, v, weights.HuWeight, null, d);
        var y = new double[(long)rows * d];
        for (long i = 0; i < y.Length; i++)
        {
            double hh = Silu(hx[i] + hu[i]);
            y[i] = phi[i] * hh + (1 - phi[i]) * xs[i];
        }
        return y;
    }

    private static double Silu(double a) => a / (1 + Math.Exp(-a));

    private static double[] Wide(ReadOnlySpan<float> x)
    {
        var r = new double[x.Length];
        for (int i = 0; i < x.Length; i++) r[i] = x[i];
        return r;
    }

    private static double[] Map(double[] a, Func<double, double> f)
    {
        var r = new double[a.Length];
        for (long i = 0; i < a.Length; i++) r[i] = f(a[i]);
        return r;
    }

    /// <summary>y (rows, outDim) = x (rows, inDim) W^T + bias, W (outDim, inDim).</summary>
    private static double[] Affine(double[] x, int rows, int inDim, float[] w, float[]? bias,
        int outDim)
    {
        var y = new double[(long)rows * outDim];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < outDim; j++)
            {
                double sum = bias is null ? 0 : bias[j];
                for (int i = 0; i < inDim; i++)
                    sum += x[(long)r * inDim + i] * w[(long)j * inDim + i];
                y[(long)r * outDim + j] = sum;
            }
        return y;
    }
}
