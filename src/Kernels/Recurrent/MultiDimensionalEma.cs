using System.Buffers;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.Recurrent;

/// <summary>
/// The size of one multi-dimensional EMA call: x and output (batch, length, dim), dense
/// row-major; the EMA parameters alpha, delta, beta, eta are (dim, emaDims) and omega (dim).
/// </summary>
public readonly record struct EmaShape(int Batch, int Length, int Dim, int EmaDims)
{
    /// <summary>batch * length * dim</summary>
    public long SequenceLength => (long)Batch * Length * Dim;

    /// <summary>dim * emaDims</summary>
    public long ParameterLength => (long)Dim * EmaDims;

    /// <summary>Throws <see cref="ArgumentException"/> naming the dimension that is not
    /// valid.</summary>
    public void Validate(string paramName = "shape")
    {
        Positive(Batch, nameof(Batch), paramName);
        Positive(Length, nameof(Length), paramName);
        Positive(Dim, nameof(Dim), paramName);
        Positive(EmaDims, nameof(EmaDims), paramName);
        if ((long)Batch * Dim > int.MaxValue)
            throw new ArgumentException($"{this}: batch x dim must fit an int.", paramName);
    }

    private static void Positive(int value, string dim, string paramName)
    {
        if (value <= 0)
            throw new ArgumentException($"{dim} must be positive, got {value}.", paramName);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"B={Batch} N={Length} D={Dim} h={EmaDims}";
}

/// <summary>
/// Mega's multi-dimensional damped exponential moving average (Ma et al., "Mega: Moving
/// Average Equipped Gated Attention", eq. 2-3): every channel c of x is expanded into
/// emaDims = h dims, u_t^(j) = beta_j x_t, each smoothed by its damped EMA
/// h_t^(j) = alpha_j u_t^(j) + (1 - alpha_j delta_j) h_(t-1)^(j) (h_(-1) = 0), and projected
/// back, y_t = sum_j eta_j h_t^(j); plus the residual omega x_t of the released code
/// (fairseq's MultiHeadEMA: out = EMA(x) + omega x; pass zeros for the paper's bare EMA).
/// alpha and delta are the damping factors in (0, 1] already through their sigmoid (the
/// code's sigmoid(delta) and sigmoid(alpha) are the paper's alpha and delta); eta is the
/// code's gamma times its scale sqrt(1 / h). Unrolled, the EMA is a causal convolution of
/// each channel with the kernel K_l = sum_j eta_j alpha_j beta_j (1 - alpha_j delta_j)^l,
/// which the released code evaluates by FFT; here it runs as the recurrence (O(length dim h)),
/// on the host parallel over the batch, on an ILGPU device one thread per (batch, channel)
/// (<see cref="EmaKernel"/>). Mega's SiLU after the EMA belongs to the layer
/// (<see cref="MegaAttention"/>).
/// </summary>
public static class MultiDimensionalEma
{
    /// <summary>Largest emaDims on ILGPU devices (the states live in local memory; Mega uses
    /// 16, or 2 on some tasks).</summary>
    public const int DeviceMaxEmaDims = EmaKernel.MaxEmaDims;

    private const int SlotX = 0, SlotCoefficients = 1, SlotOutput = 2;

    internal static readonly MethodInfo KernelMethod =
        typeof(EmaKernel).GetMethod(nameof(EmaKernel.Run))!;

    /// <summary>
    /// y_t = sum_j eta_j h_t^(j) + omega x_t per channel, on host spans, on
    /// <paramref name="device"/> (the host, or an ILGPU device: staged through its workspace,
    /// waited for). x and output (batch, length, dim); alpha, delta, beta, eta (dim, emaDims);
    /// omega (dim) or empty (no residual).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A length disagrees with the shape (the message names
    /// the argument and its dimensions), alpha or delta is outside (0, 1], a parameter is not
    /// finite, emaDims exceeds <see cref="DeviceMaxEmaDims"/> on an ILGPU device, or output
    /// overlaps an input; thrown before anything is written.</exception>
    public static void Forward(ComputeDevice device, EmaShape shape, ReadOnlySpan<float> x,
        ReadOnlySpan<float> alpha, ReadOnlySpan<float> delta, ReadOnlySpan<float> beta,
        ReadOnlySpan<float> eta, ReadOnlySpan<float> omega, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        Validate(device, shape, x.Length, alpha, delta, beta, eta, omega, output.Length);
        if (output.Overlaps(x) || output.Overlaps(alpha) || output.Overlaps(delta)
            || output.Overlaps(beta) || output.Overlaps(eta) || output.Overlaps(omega))
            throw new ArgumentException("output must not overlap x or a parameter.",
                nameof(output));
        long count = 3 * shape.ParameterLength + shape.Dim;
        float[] coefficients = ArrayPool<float>.Shared.Rent((int)count);
        try
        {
            var packed = coefficients.AsSpan(0, (int)count);
            Pack(shape, alpha, delta, beta, eta, omega, packed);
            if (device.IsHost)
            {
                ForwardHost(shape, x, packed, output);
                return;
            }
            var ws = device.Workspace;
            var dx = ws.Get<float>(SlotX, x.Length);
            var dc = ws.Get<float>(SlotCoefficients, count);
            var dout = ws.Get<float>(SlotOutput, output.Length);
            dx.CopyFromCPU(x);
            dc.CopyFromCPU(packed);
            var accelerator = device.Ilgpu;
            int threads = Math.Min(128, accelerator.MaxNumThreadsPerGroup);
            int items = shape.Batch * shape.Dim;
            var launch = device.Kernels.Get<EmaLauncher>(KernelMethod);
            launch(accelerator.DefaultStream,
                new KernelConfig((items + threads - 1) / threads, threads), dx, dc, dout,
                new EmaParams(shape));
            dout.CopyToCPU(output);
            accelerator.Synchronize();
        }
        finally
        {
            ArrayPool<float>.Shared.Return(coefficients);
        }
    }

    /// <summary>The convolution kernel of the EMA, K[c, l] = sum_j eta_j alpha_j beta_j
    /// (1 - alpha_j delta_j)^l for l = 0..length-1, into <paramref name="kernel"/> (dim,
    /// length), so that y_t = sum_(l &lt;= t) K[c, l] x_(t-l) + omega x_t (the released code's
    /// FFT form). In double.</summary>
    /// <exception cref="ArgumentException">As <see cref="Forward"/> for the parameters, or the
    /// kernel is not dim x length.</exception>
    public static void ConvolutionKernel(EmaShape shape, ReadOnlySpan<float> alpha,
        ReadOnlySpan<float> delta, ReadOnlySpan<float> beta, ReadOnlySpan<float> eta,
        Span<double> kernel)
    {
        Validate(ComputeDevice.Host, shape, shape.SequenceLength, alpha, delta, beta, eta,
            default, shape.SequenceLength);
        CheckLength(kernel.Length, (long)shape.Dim * shape.Length, nameof(kernel),
            $"dim {shape.Dim} x length {shape.Length}");
        int m = shape.EmaDims, n = shape.Length;
        kernel.Clear();
        for (int c = 0; c < shape.Dim; c++)
            for (int j = 0; j < m; j++)
            {
                int i = c * m + j;
                double w = (double)eta[i] * alpha[i] * beta[i],
                    q = 1.0 - (double)alpha[i] * delta[i];
                for (int l = 0; l < n; l++, w *= q) kernel[c * n + l] += w;
            }
    }

    internal static void Validate(ComputeDevice device, EmaShape shape, long xLength,
        ReadOnlySpan<float> alpha, ReadOnlySpan<float> delta, ReadOnlySpan<float> beta,
        ReadOnlySpan<float> eta, ReadOnlySpan<float> omega, long outputLength)
    {
        shape.Validate(nameof(shape));
        var s = shape;
        string seq = $"batch {s.Batch} x length {s.Length} x dim {s.Dim}";
        string par = $"dim {s.Dim} x emaDims {s.EmaDims}";
        CheckLength(xLength, s.SequenceLength, "x", seq);
        CheckLength(alpha.Length, s.ParameterLength, "alpha", par);
        CheckLength(delta.Length, s.ParameterLength, "delta", par);
        CheckLength(beta.Length, s.ParameterLength, "beta", par);
        CheckLength(eta.Length, s.ParameterLength, "eta", par);
        if (!omega.IsEmpty) CheckLength(omega.Length, s.Dim, "omega", $"dim {s.Dim} (or empty)");
        CheckLength(outputLength, s.SequenceLength, "output", seq);
        CheckUnit(alpha, "alpha");
        CheckUnit(delta, "delta");
        CheckFinite(beta, "beta");
        CheckFinite(eta, "eta");
        CheckFinite(omega, "omega");
        if (!device.IsHost && s.EmaDims > DeviceMaxEmaDims)
            throw new ArgumentException($"EmaDims is {s.EmaDims}; an ILGPU device takes at most "
                + $"{DeviceMaxEmaDims} (the states live in local memory).", nameof(shape));
    }

    internal static void CheckLength(long actual, long expected, string name, string layout)
    {
        if (actual != expected)
            throw new ArgumentException(
                $"{name} has {actual} elements; expected {expected} = {layout}.", name);
    }

    private static void CheckUnit(ReadOnlySpan<float> values, string name)
    {
        for (int i = 0; i < values.Length; i++)
            if (!(values[i] > 0f && values[i] <= 1f))
                throw new ArgumentException(
                    $"{name}[{i}] is {values[i]}; expected a damping factor in (0, 1].", name);
    }

    internal static void CheckFinite(ReadOnlySpan<float> values, string name)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
                throw new ArgumentException($"{name}[{i}] is {values[i]}; expected finite.",
                    name);
    }

    /// <summary>[a = alpha beta, q = 1 - alpha delta, e = eta, omega], rounded once from
    /// double.</summary>
    private static void Pack(EmaShape s, ReadOnlySpan<float> alpha, ReadOnlySpan<float> delta,
        ReadOnlySpan<float> beta, ReadOnlySpan<float> eta, ReadOnlySpan<float> omega,
        Span<float> packed)
    {
        int plane = (int)s.ParameterLength;
        for (int i = 0; i < plane; i++)
        {
            packed[i] = (float)((double)alpha[i] * beta[i]);
            packed[plane + i] = (float)(1.0 - (double)alpha[i] * delta[i]);
            packed[2 * plane + i] = eta[i];
        }
        var om = packed.Slice(3 * plane, s.Dim);
        if (omega.IsEmpty) om.Clear();
        else omega.CopyTo(om);
    }

    private static unsafe void ForwardHost(EmaShape s, ReadOnlySpan<float> x,
        ReadOnlySpan<float> packed, Span<float> output)
    {
        fixed (float* px = x, pc = packed, po = output)
        {
            var job = new HostJob(s, px, pc, po);
            if (s.Batch == 1) job.Batch(0);
            else Parallel.For(0, s.Batch, job.Batch);
        }
    }

    /// <summary>The pinned tensors of one host call; one batch item per task.</summary>
    private sealed unsafe class HostJob(EmaShape s, float* x, float* coefficients, float* output)
    {
        public void Batch(int b)
        {
            int d = s.Dim, m = s.EmaDims, plane = d * m;
            float[] state = ArrayPool<float>.Shared.Rent(plane); // (dim, emaDims)
            try
            {
                var h = state.AsSpan(0, plane);
                h.Clear();
                float* a = coefficients, q = coefficients + plane, e = q + plane,
                    omega = e + plane;
                long row = (long)b * s.Length * d;
                for (int t = 0; t < s.Length; t++, row += d)
                    for (int c = 0; c < d; c++)
                    {
                        float xv = x[row + c], y = omega[c] * xv;
                        int i = c * m;
                        for (int j = 0; j < m; j++, i++)
                        {
                            float hj = a[i] * xv + q[i] * h[i];
                            h[i] = hj;
                            y += e[i] * hj;
                        }
                        output[row + c] = y;
                    }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(state);
            }
        }
    }
}

/// <summary>The loaded EMA kernel: stream, launch configuration, its arguments.</summary>
internal delegate void EmaLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> x, ArrayView<float> coefficients, ArrayView<float> output, EmaParams p);
