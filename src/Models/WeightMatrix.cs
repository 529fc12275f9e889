using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;
using Half = System.Half;

namespace Managed.Models;

/// <summary>
/// A weight matrix (rows, cols) as nn.Linear stores it, in its stored element type (float,
/// Half or BFloat16), on the host (usually the checkpoint's mapped bytes) or on a device:
/// the linear layer y = x Wᵀ + b and the embedding lookup widen it in registers.
/// </summary>
internal abstract class WeightMatrix : IDisposable
{
    protected WeightMatrix(ComputeDevice device, int rows, int cols, LinearOptions options) =>
        (Device, Rows, Cols, Options) = (device, rows, cols, options);

    public ComputeDevice Device { get; }

    /// <summary>The calls' options: the model's <see cref="HostWorkers"/> (host) and its
    /// <see cref="LinearPrecision"/> (prefill on a CUDA device).</summary>
    protected LinearOptions Options { get; }

    /// <summary>Output features (vocabulary for an embedding).</summary>
    public int Rows { get; }

    /// <summary>Input features (hidden size for an embedding).</summary>
    public int Cols { get; }

    /// <summary>Bytes held: what one full pass over the matrix reads.</summary>
    public abstract long Bytes { get; }

    /// <summary>y (m, Rows) = x (m, Cols) Wᵀ + bias (Rows, or none).</summary>
    public abstract void Linear(Act x, Act y, int m, Act? bias);

    /// <summary>y[i] = W[ids[i]] for i &lt; m: the embedding lookup.</summary>
    public abstract void Gather(IndexBuffer ids, int m, Act y, Blocks blocks);

    public abstract void Dispose();

    /// <summary>The matrix of <paramref name="host"/> (rows × cols elements, row-major),
    /// copied once into 2 MB-aligned host memory (huge pages on Linux) on the host device, or
    /// to an ILGPU device; calls run with <paramref name="options"/>.</summary>
    public static WeightMatrix<T> Create<T>(ComputeDevice device, ReadOnlyMemory<T> host,
        int rows, int cols, LinearOptions options) where T : unmanaged =>
        new(device, host, rows, cols, options);
}

/// <inheritdoc cref="WeightMatrix"/>
internal sealed class WeightMatrix<T> : WeightMatrix where T : unmanaged
{
    private readonly ReadOnlyMemory<T> _host;
    private readonly HostWeightMemory<T>? _hostMemory;
    private readonly MemoryBuffer1D<T, Stride1D.Dense>? _device;

    public WeightMatrix(ComputeDevice device, ReadOnlyMemory<T> host, int rows, int cols,
        LinearOptions options) : base(device, rows, cols, options)
    {
        if (host.Length != (long)rows * cols)
            throw new ArgumentException($"{host.Length} elements for ({rows}, {cols}).");
        if (device.IsHost)
        {
            // Copied out of the file mapping into huge pages: decode streams every weight per
            // token, and the mapped file's 4 KB pages halved that stream (1.1 B bf16 model on 2
            // threads: 5.5-8.2 tokens/s mapped, 12-15 copied to the GC heap, 17.5-18.5 here).
            _hostMemory = new HostWeightMemory<T>(host.Span);
            _host = _hostMemory.Memory;
        }
        else
        {
            _device = device.Accelerator!.Allocate1D<T>(host.Length);
            _device.View.AsContiguous().CopyFromCPU(host.Span);
        }
    }

    public override long Bytes => (long)Rows * Cols * System.Runtime.CompilerServices
        .Unsafe.SizeOf<T>();

    public override void Linear(Act x, Act y, int m, Act? bias)
    {
        var shape = new LinearShape(m, Rows, Cols);
        long xs = (long)m * Cols, ys = (long)m * Rows;
        if (_device is null)
            Kernels.Matmul.Linear.Forward<T>(Device, shape, x.Span[..(int)xs], _host.Span,
                bias is { } b ? b.Span : default, y.Span[..(int)ys], Options);
        else
            Kernels.Matmul.Linear.Forward(Device, shape, x.View.SubView(0, xs),
                _device.View.AsContiguous(), bias is { } b ? b.View : default,
                y.View.SubView(0, ys), Options);
    }

    public override void Gather(IndexBuffer ids, int m, Act y, Blocks blocks)
    {
        if (_device is null)
        {
            var table = _host.Span;
            var output = y.Span;
            for (int i = 0; i < m; i++)
                Widen(table.Slice(ids.Host[i] * Cols, Cols), output.Slice(i * Cols, Cols));
            return;
        }
        ((IlgpuBlocks)blocks).Gather(_device.View.AsContiguous(), ids.Upload(m), m, Cols, y);
    }

    private static void Widen(ReadOnlySpan<T> source, Span<float> destination)
    {
        if (typeof(T) == typeof(float))
            System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(source)
                .CopyTo(destination);
        else if (typeof(T) == typeof(Half))
            ElementConvert.ToSingle(
                System.Runtime.InteropServices.MemoryMarshal.Cast<T, Half>(source), destination);
        else
            ElementConvert.ToSingle(
                System.Runtime.InteropServices.MemoryMarshal.Cast<T, BFloat16>(source),
                destination);
    }

    public override void Dispose()
    {
        _device?.Dispose();
        ((IDisposable?)_hostMemory)?.Dispose();
    }
}
