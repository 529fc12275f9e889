using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Half = System.Half;

namespace Managed.Models;

/// <summary>The blocks as ILGPU kernels on one device (enqueued on its default stream),
/// loaded once per model; a group per row for the norms, a thread per element otherwise.
/// </summary>
internal sealed class IlgpuBlocks : Blocks
{
    private readonly Accelerator _accelerator;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        int, float> _rmsNorm;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, int, float> _layerNorm;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int,
        int> _rope;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _add;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int> _gatedMul;
    private readonly Action<Index1D, ArrayView<float>, int> _activate;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>
        _toHeadMajor, _fromHeadMajor;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, int, int, int> _outputGate;
    private readonly Dictionary<Type, Delegate> _generic = [];

    public IlgpuBlocks(ComputeDevice device)
    {
        _accelerator = device.Accelerator!;
        var a = _accelerator;
        _rmsNorm = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int,
            float>(IlgpuKernels.RmsNorm);
        _layerNorm = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, int, float>(IlgpuKernels.LayerNorm);
        _rope = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, int, int>(IlgpuKernels.Rope);
        _gatedMul = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(
            IlgpuKernels.GatedMul);
        _add = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(
            IlgpuKernels.Add);
        _outputGate = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(
            IlgpuKernels.OutputGate);
        _activate = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int>(
            IlgpuKernels.Activate);
        _toHeadMajor = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
            int, int, int>(IlgpuKernels.ToHeadMajor);
        _fromHeadMajor = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>,
            ArrayView<float>, int, int, int>(IlgpuKernels.FromHeadMajor);
    }

    public override void RmsNorm(Act x, Act y, Act weight, int rows, int width, float eps) =>
        _rmsNorm(NormGroups(rows), x.View, y.View, weight.View, width, eps);

    public override void LayerNorm(Act x, Act y, Act weight, Act bias, int rows, int width,
        float eps) =>
        _layerNorm(NormGroups(rows), x.View, y.View, weight.View, bias.View, width, eps);

    private static KernelConfig NormGroups(int rows) =>
        new(rows, IlgpuKernels.NormThreads);

    public override void Rope(Act x, int rows, int heads, int dim, Act cos, Act sin) =>
        _rope(rows * heads * (dim / 2), x.View, cos.View, sin.View, heads, dim / 2);

    public override void GatedMul(Act gate, Act up, long n, Activation activation) =>
        _gatedMul((int)n, gate.View, up.View, (int)activation);

    public override void Activate(Act x, long n, Activation activation) =>
        _activate((int)n, x.View, (int)activation);

    public override void OutputGate(Act x, Act attention, Act weight, Act bias, int rows,
        int hidden, int heads, int dim) => _outputGate(rows * heads, x.View, attention.View,
        weight.View, bias.View, hidden, heads, dim);

    public override void Add(Act x, Act y, long n) => _add((int)n, x.View, y.View);

    public override void ToHeadMajor(Act src, Act dst, int rows, int heads, int dim) =>
        _toHeadMajor(rows * heads * dim, src.View, dst.View, rows, heads, dim);

    public override void FromHeadMajor(Act src, Act dst, int rows, int heads, int dim) =>
        _fromHeadMajor(rows * heads * dim, src.View, dst.View, rows, heads, dim);

    public override void Download(Act y, Span<float> destination)
    {
        y.View.SubView(0, destination.Length).CopyToCPU(destination);
        _accelerator.Synchronize();
    }

    public override void Bind() => _accelerator.Bind();

    public override void Synchronize() => _accelerator.Synchronize();

    public override void Upload(ReadOnlySpan<float> source, Act y) =>
        StagedUpload.Copy(_accelerator, source, y.View);

    /// <summary>y[i] = widen(table[ids[i]]) for m rows of width.</summary>
    public void Gather<T>(ArrayView<T> table, ArrayView<int> ids, int m, int width, Act y)
        where T : unmanaged
    {
        var kernel = (Action<Index1D, ArrayView<T>, ArrayView<int>, ArrayView<float>, int>)
            Generic<T>(nameof(IlgpuKernels.Gather));
        kernel(m * width, table, ids, y.View, width);
    }

    /// <summary>dst (heads, rows, dim) = narrow(src (rows, heads, dim)): rows into the
    /// layout and element type of the KV cache's appends.</summary>
    public void Pack<T>(Act src, ArrayView<T> dst, int rows, int heads, int dim)
        where T : unmanaged
    {
        var kernel = (Action<Index1D, ArrayView<float>, ArrayView<T>, int, int, int>)
            Generic<T>(nameof(IlgpuKernels.Pack));
        kernel(rows * heads * dim, src.View, dst, rows, heads, dim);
    }

    private Delegate Generic<T>(string name) where T : unmanaged
    {
        var key = name == nameof(IlgpuKernels.Gather) ? typeof(Func<T>) : typeof(Action<T>);
        if (_generic.TryGetValue(key, out var loaded))
            return loaded;
        Type element = typeof(T) == typeof(float) ? typeof(Float32Element)
            : typeof(T) == typeof(Half) ? typeof(Float16Element) : typeof(BFloat16Element);
        var method = typeof(IlgpuKernels).GetMethod(name)!.MakeGenericMethod(element, typeof(T));
        Delegate kernel = name == nameof(IlgpuKernels.Gather)
            ? _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<int>,
                ArrayView<float>, int>(method.CreateDelegate<Action<Index1D, ArrayView<T>,
                ArrayView<int>, ArrayView<float>, int>>())
            : _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<T>,
                int, int, int>(method.CreateDelegate<Action<Index1D, ArrayView<float>,
                ArrayView<T>, int, int, int>>());
        _generic[key] = kernel;
        return kernel;
    }
}
