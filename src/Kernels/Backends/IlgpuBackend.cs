using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Backends;

/// <summary>A loaded kernel: launch configuration, then the kernel's arguments.</summary>
internal delegate void Launcher<TScore, TMask, TNorm>(KernelConfig config, ArrayView<float> query,
    ArrayView<float> key, ArrayView<float> value, ArrayView<float> output,
    ArrayView<float> logSumExp, ArrayView<float> rowStats, GpuAttentionParams p, TScore score,
    TMask mask, TNorm norm);

/// <summary>
/// One ILGPU context and accelerator (CUDA, OpenCL or ILGPU's CPU accelerator), owned and
/// disposed with this object, and the attention kernels compiled for it, cached per variant
/// type (strong references: ILGPU's own cache is weak).
/// </summary>
public sealed class IlgpuBackend : IKernelBackend
{
    /// <summary>Largest headDim and valueDim the ILGPU kernel supports.</summary>
    public const int MaxHeadDim = 256;

    private readonly Context _context;
    private readonly Dictionary<Type, Delegate> _kernels = new();
    private readonly FlashAttentionTuning _tuning;
    private readonly bool _shuffle;
    private MemoryBuffer1D<float, Stride1D.Dense>? _dummyLse;
    private bool _disposed;

    private IlgpuBackend(Context context, Accelerator accelerator, DeviceKind kind, FlashAttentionTuning? tuning)
    {
        _context = context;
        Accelerator = accelerator;
        Kind = kind;
        _tuning = tuning ?? FlashAttentionTuning.Default;
        // ILGPU 1.5.3's OpenCL code generator maps warp shuffles only through a table keyed by
        // vendor (Intel sub-group built-ins); for any other vendor, PoCL's CPU device included,
        // it throws InvalidCodeGenerationException even when the device has sub-groups. Those
        // devices get the shared-memory reduction.
        bool canShuffle = accelerator is not CLAccelerator cl
            || cl.Capabilities.SubGroups && cl.Vendor == CLDeviceVendor.Intel;
        _shuffle = _tuning.GpuReduction switch
        {
            GpuRowReduction.Shuffle => canShuffle ? true
                : throw new ArgumentException($"{accelerator.Name} has no sub-group shuffles.", nameof(tuning)),
            GpuRowReduction.SharedMemory => false,
            _ => canShuffle,
        };
    }

    /// <summary>The accelerator; device buffers for the view-based entry point come from it.</summary>
    public Accelerator Accelerator { get; }

    /// <inheritdoc/>
    public DeviceKind Kind { get; }

    private string VendorNote => Accelerator is CLAccelerator cl
        ? $", vendor {cl.Vendor}, {cl.CLStdVersion}, sub-groups {cl.Capabilities.SubGroups}" : "";

    /// <inheritdoc/>
    public string Name => $"{Kind}: {Accelerator.Name}{VendorNote} (row reduction: {(_shuffle ? "warp shuffle" : "shared memory")})";

    /// <summary>Opens a CUDA or OpenCL GPU if one is present, else null.</summary>
    public static IlgpuBackend? TryOpenGpu(FlashAttentionTuning? tuning = null)
    {
        foreach (var kind in new[] { DeviceKind.Cuda, DeviceKind.OpenCL })
        {
            try { return Open(kind, tuning); }
            catch (InvalidOperationException) { }
        }
        return null;
    }

    /// <summary>Opens the first device of <paramref name="kind"/> (Cuda, OpenCL or IlgpuCpu).</summary>
    /// <exception cref="InvalidOperationException">No such device is present.</exception>
    public static IlgpuBackend Open(DeviceKind kind, FlashAttentionTuning? tuning = null)
    {
        Context context = kind switch
        {
            DeviceKind.Cuda => Context.Create(b => b.Cuda().EnableAlgorithms()),
            DeviceKind.OpenCL => Context.Create(b => b.OpenCL().EnableAlgorithms()),
            // 32-wide warps and 128-thread groups, so kernels written for GPUs run unchanged.
            DeviceKind.IlgpuCpu => Context.Create(b =>
                b.CPU(new CPUDevice(32, 4, Math.Max(1, Environment.ProcessorCount))).EnableAlgorithms()),
            _ => throw new ArgumentException($"{kind} is not an ILGPU device kind.", nameof(kind)),
        };
        try
        {
            Accelerator accelerator = kind switch
            {
                DeviceKind.Cuda when context.GetCudaDevices().Count > 0 =>
                    context.GetCudaDevice(0).CreateAccelerator(context),
                DeviceKind.OpenCL when context.GetCLDevices().Count > 0 =>
                    context.GetCLDevice(0).CreateAccelerator(context),
                DeviceKind.IlgpuCpu => context.GetCPUDevice(0).CreateAccelerator(context),
                _ => throw new InvalidOperationException($"No {kind} device is present."),
            };
            return new IlgpuBackend(context, accelerator, kind, tuning);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Attention on host spans: uploads, runs, downloads, and waits. For data already on the
    /// device use the view overload.
    /// </summary>
    public void Attention<TScore, TMask>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        Attention(shape, query, key, value, output, logSumExp, score, mask,
            default(SoftmaxNormalizer), options);

    /// <summary>
    /// Attention with a softmax replacement on host spans (see
    /// <see cref="FlashAttention.Forward{TScore,TMask,TNorm}"/>): uploads, runs, downloads, waits.
    /// </summary>
    public void Attention<TScore, TMask, TNorm>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        FlashAttention.ValidateCall(shape, query.Length, key.Length, value.Length, output.Length,
            logSumExp.Length, options);
        FlashAttention.ValidateNoOverlap(query, key, value, output, logSumExp);
        CheckDims(shape);
        VariantChecks.Validate(score, shape, onDevice: true, nameof(score));
        VariantChecks.Validate(mask, shape, onDevice: true, nameof(mask));
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var q = Accelerator.Allocate1D<float>(query.Length);
        using var k = Accelerator.Allocate1D<float>(key.Length);
        using var v = Accelerator.Allocate1D<float>(value.Length);
        using var o = Accelerator.Allocate1D<float>(output.Length);
        using var lse = Accelerator.Allocate1D<float>(Math.Max(1, logSumExp.Length));
        q.View.AsContiguous().CopyFromCPU(query);
        k.View.AsContiguous().CopyFromCPU(key);
        v.View.AsContiguous().CopyFromCPU(value);
        Attention(shape, q.View, k.View, v.View, o.View,
            logSumExp.IsEmpty ? default : lse.View, score, mask, normalizer, options);
        o.View.AsContiguous().CopyToCPU(output);
        if (!logSumExp.IsEmpty) lse.View.AsContiguous().CopyToCPU(logSumExp);
        Accelerator.Synchronize();
    }

    /// <summary>
    /// Attention on device-resident views of this accelerator (layouts as in
    /// <see cref="AttentionShape"/>); <paramref name="logSumExp"/> may be an empty view.
    /// Enqueued on the default stream: synchronize, or copy on that stream, before reading.
    /// </summary>
    public void Attention<TScore, TMask>(AttentionShape shape, ArrayView<float> query,
        ArrayView<float> key, ArrayView<float> value, ArrayView<float> output,
        ArrayView<float> logSumExp, TScore score, TMask mask, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        Attention(shape, query, key, value, output, logSumExp, score, mask,
            default(SoftmaxNormalizer), options);

    /// <summary>
    /// Attention with a softmax replacement on device-resident views; a normalizer that needs
    /// the softmax log-sum-exp (clipped softmax) runs the kernel twice, with device scratch of
    /// (batch, heads, seqQ) and the output's size.
    /// </summary>
    public void Attention<TScore, TMask, TNorm>(AttentionShape shape, ArrayView<float> query,
        ArrayView<float> key, ArrayView<float> value, ArrayView<float> output,
        ArrayView<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        FlashAttention.ValidateCall(shape, query.Length, key.Length, value.Length, output.Length,
            logSumExp.Length, options);
        CheckDims(shape);
        VariantChecks.Validate(score, shape, onDevice: true, nameof(score));
        VariantChecks.Validate(mask, shape, onDevice: true, nameof(mask));
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (TNorm.NeedsLogSumExp)
        {
            // Pass 1: the softmax log-sum-exp of every row (its output is scratch).
            using var stats = Accelerator.Allocate1D<float>(shape.LogSumExpLength);
            using var scratch = Accelerator.Allocate1D<float>(shape.OutputLength);
            Launch(shape, query, key, value, scratch.View, stats.View, default, score, mask,
                default(SoftmaxNormalizer), options);
            Launch(shape, query, key, value, output, logSumExp, stats.View, score, mask,
                normalizer, options);
            Accelerator.Synchronize(); // the scratch is freed on return
            return;
        }
        Launch(shape, query, key, value, output, logSumExp, default, score, mask, normalizer, options);
    }

    private void Launch<TScore, TMask, TNorm>(AttentionShape shape, ArrayView<float> query,
        ArrayView<float> key, ArrayView<float> value, ArrayView<float> output,
        ArrayView<float> logSumExp, ArrayView<float> rowStats, TScore score, TMask mask,
        TNorm normalizer, AttentionOptions options)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        var (blockQ, _) = TileSizes(shape);
        int queryTiles = (shape.SeqQ + blockQ - 1) / blockQ;
        var p = new GpuAttentionParams(shape.Batch, shape.Heads, shape.KvHeads, shape.SeqQ,
            shape.SeqK, shape.HeadDim, shape.ValueDim, shape.GroupSize,
            shape.QueryOffset(options.Alignment), queryTiles, options.ScaleFor(shape.HeadDim),
            logSumExp.Length > 0 ? 1 : 0);
        _dummyLse ??= Accelerator.Allocate1D<float>(1); // kernels take views either way
        if (logSumExp.Length == 0) logSumExp = _dummyLse.View;
        if (rowStats.Length == 0) rowStats = _dummyLse.View;
        var grid = shape.Batch * shape.Heads * queryTiles;
        var kernel = KernelFor<TScore, TMask, TNorm>(Math.Max(shape.HeadDim, shape.ValueDim), out int threads);
        kernel(new KernelConfig(grid, threads), query, key, value, output, logSumExp, rowStats, p,
            score, mask, normalizer);
    }

    /// <summary>
    /// The compiled kernel for a variant and head dim: register-tiled up to 128 dims (64 or 128
    /// output columns), the general tiled kernel above; shuffle or shared-memory reductions.
    /// </summary>
    private Launcher<TScore, TMask, TNorm> KernelFor<TScore, TMask, TNorm>(int dim, out int threads)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        threads = dim <= 128 ? FlashAttentionIlgpuFast.Threads
            : GpuTile256.BlockQ / GpuTile256.RowsPerThread * (GpuTile256.BlockK / GpuTile256.KeysPerThread);
        return (dim <= 64, dim <= 128, _shuffle) switch
        {
            (true, _, true) => Cached<TScore, TMask, TNorm, (FastColumns64, ShuffleReduction)>(
                FlashAttentionIlgpuFast.ForwardKernel<TScore, TMask, TNorm, FastColumns64, ShuffleReduction>),
            (true, _, false) => Cached<TScore, TMask, TNorm, (FastColumns64, SharedMemoryReduction)>(
                FlashAttentionIlgpuFast.ForwardKernel<TScore, TMask, TNorm, FastColumns64, SharedMemoryReduction>),
            (false, true, true) => Cached<TScore, TMask, TNorm, (FastColumns128, ShuffleReduction)>(
                FlashAttentionIlgpuFast.ForwardKernel<TScore, TMask, TNorm, FastColumns128, ShuffleReduction>),
            (false, true, false) => Cached<TScore, TMask, TNorm, (FastColumns128, SharedMemoryReduction)>(
                FlashAttentionIlgpuFast.ForwardKernel<TScore, TMask, TNorm, FastColumns128, SharedMemoryReduction>),
            (false, false, true) => Cached<TScore, TMask, TNorm, (GpuTile256, ShuffleReduction)>(
                FlashAttentionIlgpu.ForwardKernel<TScore, TMask, TNorm, GpuTile256, ShuffleReduction>),
            _ => Cached<TScore, TMask, TNorm, (GpuTile256, SharedMemoryReduction)>(
                FlashAttentionIlgpu.ForwardKernel<TScore, TMask, TNorm, GpuTile256, SharedMemoryReduction>),
        };
    }

    /// <summary>The (query, key) tile of the kernel that runs <paramref name="shape"/>.</summary>
    internal static (int QueryTile, int KeyTile) TileSizes(AttentionShape shape) =>
        Math.Max(shape.HeadDim, shape.ValueDim) <= 128
            ? (FlashAttentionIlgpuFast.BlockQ, FlashAttentionIlgpuFast.BlockK)
            : (GpuTile256.BlockQ, GpuTile256.BlockK);

    private static void CheckDims(AttentionShape shape)
    {
        if (shape.HeadDim > MaxHeadDim || shape.ValueDim > MaxHeadDim)
            throw new ArgumentException(
                $"HeadDim ({shape.HeadDim}) and ValueDim ({shape.ValueDim}) must be <= "
                + $"{MaxHeadDim} on ILGPU devices.", nameof(shape));
    }

    /// <summary>Loads <paramref name="method"/> once per (variant, specialization) type and keeps
    /// a strong reference: ILGPU's own cache is weak, and loading per call would recompile.</summary>
    private Launcher<TScore, TMask, TNorm> Cached<TScore, TMask, TNorm, TSpecialization>(
        Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, GpuAttentionParams, TScore, TMask, TNorm> method)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        var key = typeof((TScore, TMask, TNorm, TSpecialization));
        lock (_kernels)
        {
            if (!_kernels.TryGetValue(key, out var launcher))
            {
                var loaded = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>,
                    ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                    GpuAttentionParams, TScore, TMask, TNorm>(method); // the static kernel, no closure
                launcher = new Launcher<TScore, TMask, TNorm>(loaded);
                _kernels.Add(key, launcher);
            }
            return (Launcher<TScore, TMask, TNorm>)launcher;
        }
    }

    /// <summary>Number of kernels compiled so far (each variant and tile once).</summary>
    public int CompiledKernelCount { get { lock (_kernels) return _kernels.Count; } }

    /// <summary>Releases the kernels, the accelerator and the context.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _dummyLse?.Dispose();
        _kernels.Clear();
        Accelerator.Dispose();
        _context.Dispose();
    }
}
