using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Attention;

/// <summary>A loaded attention kernel: stream, launch configuration, then its arguments.</summary>
internal delegate void AttentionLauncher<TStorage, TScore, TMask, TNorm, TSchedule>(
    AcceleratorStream stream, KernelConfig config, ArrayView<TStorage> query,
    ArrayView<TStorage> key, ArrayView<TStorage> value, ArrayView<float> output,
    ArrayView<float> logSumExp, ArrayView<float> rowStats, ArrayView<int> keyLengths,
    GpuAttentionParams p, TScore score, TMask mask, TNorm norm, TSchedule schedule)
    where TStorage : unmanaged;

// The ILGPU launch plan of the attention family: kernel choice by head dim and reduction,
// workspace slots, one or two passes. Runs under the device's lease.
public static partial class FlashAttention
{
    /// <summary>Largest headDim and valueDim the ILGPU kernels support.</summary>
    public const int MaxIlgpuHeadDim = 256;

    /// <summary>Largest row stride (elements) on ILGPU devices: a tile's rows are 32-bit
    /// offsets from its first row.</summary>
    internal const long MaxIlgpuRowStride = int.MaxValue / 128;

    // Workspace slots: staging of the span entry point, then the two-pass scratch and the
    // per-sequence key lengths.
    private const int SlotQuery = 0, SlotKey = 1, SlotValue = 2, SlotOutput = 3, SlotLse = 4,
        SlotStats = 5, SlotScratch = 6, SlotSmall = 7;

    /// <summary>Span entry point on an ILGPU device: stage through the workspace, run, copy
    /// back, wait (the workspace is reused by the next call). A strided output is staged both
    /// ways, so the elements between its rows come back as they were.</summary>
    private static void ForwardStaged<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(
        ComputeDevice device, AttentionShape shape, AttentionGeometry geometry,
        ReadOnlySpan<TStorage> query, ReadOnlySpan<TStorage> key, ReadOnlySpan<TStorage> value,
        Span<float> output, Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        TSchedule schedule, AttentionOptions options)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        ValidateOnDevice(device, shape, geometry, score, mask, schedule, options);
        var ws = device.Workspace;
        var q = ws.Get<TStorage>(SlotQuery, query.Length);
        var k = ws.Get<TStorage>(SlotKey, key.Length);
        var v = ws.Get<TStorage>(SlotValue, value.Length);
        var o = ws.Get<float>(SlotOutput, output.Length);
        var lse = logSumExp.IsEmpty ? default : ws.Get<float>(SlotLse, logSumExp.Length);
        q.CopyFromCPU(query);
        k.CopyFromCPU(key);
        v.CopyFromCPU(value);
        if (output.Length != shape.OutputLength || options.Layout.Output is not null)
            o.CopyFromCPU(output);
        Run<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(device, shape, geometry, q, k,
            v, o, lse, score, mask, normalizer, schedule, options);
        o.CopyToCPU(output);
        if (!logSumExp.IsEmpty) lse.CopyToCPU(logSumExp);
        device.Ilgpu.Synchronize();
    }

    /// <summary>View entry point on an ILGPU device, after the views were checked.</summary>
    private static void ForwardIlgpu<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(
        ComputeDevice device, AttentionShape shape, AttentionGeometry geometry,
        ArrayView<TStorage> query, ArrayView<TStorage> key, ArrayView<TStorage> value,
        ArrayView<float> output, ArrayView<float> logSumExp, TScore score, TMask mask,
        TNorm normalizer, TSchedule schedule, AttentionOptions options)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        ValidateOnDevice(device, shape, geometry, score, mask, schedule, options);
        Run<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(device, shape, geometry, query,
            key, value, output, logSumExp, score, mask, normalizer, schedule, options);
    }

    private static void ValidateOnDevice<TScore, TMask, TSchedule>(ComputeDevice device,
        AttentionShape shape, AttentionGeometry geometry, TScore score, TMask mask,
        TSchedule schedule, AttentionOptions options)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TSchedule : struct, IKeyTileSchedule
    {
        if (shape.HeadDim > MaxIlgpuHeadDim || shape.ValueDim > MaxIlgpuHeadDim)
            throw new ArgumentException(
                $"HeadDim ({shape.HeadDim}) and ValueDim ({shape.ValueDim}) must be <= "
                + $"{MaxIlgpuHeadDim} on ILGPU devices.", nameof(shape));
        foreach (var (strides, name) in new[] { (geometry.Q, "query"), (geometry.K, "key"),
                     (geometry.V, "value"), (geometry.O, "output") })
            if (strides.Row > MaxIlgpuRowStride)
                throw new ArgumentException(
                    $"{name} row stride {strides.Row} exceeds {MaxIlgpuRowStride} on ILGPU devices.",
                    name);
        long groups = (long)shape.Batch * shape.Heads
            * ((shape.SeqQ + IlgpuTileSizes(shape).QueryTile - 1) / IlgpuTileSizes(shape).QueryTile);
        if (groups > int.MaxValue)
            throw new ArgumentException(
                $"Shape {shape} needs {groups} thread groups; at most {int.MaxValue}.", nameof(shape));
        VariantChecks.Validate(score, shape, onDevice: true, nameof(score));
        VariantChecks.Validate(mask, shape, onDevice: true, nameof(mask));
        TableOwnership.Check(score, device.Ilgpu, nameof(score));
        TableOwnership.Check(mask, device.Ilgpu, nameof(mask));
        TableOwnership.Check(schedule, device.Ilgpu, nameof(schedule));
        UsesShuffle(device, options.Tuning ?? AttentionTuning.Default); // throws if unusable
    }

    /// <summary>One pass, or two for a normalizer that reads the softmax log-sum-exp (its
    /// scratch from the workspace: stream order keeps a later call from overwriting it early).
    /// </summary>
    private static void Run<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(
        ComputeDevice device, AttentionShape shape, AttentionGeometry geometry,
        ArrayView<TStorage> query, ArrayView<TStorage> key, ArrayView<TStorage> value,
        ArrayView<float> output, ArrayView<float> logSumExp, TScore score, TMask mask,
        TNorm normalizer, TSchedule schedule, AttentionOptions options)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        // The small slot holds one float (bound to unused view arguments) then the key lengths.
        var small = device.Workspace.Get<int>(SlotSmall, 1 + shape.Batch);
        var keyLengths = small.SubView(1, shape.Batch);
        if (geometry.KeyLengths is { } lengths) keyLengths.CopyFromCPU(lengths);
        var unused = small.SubView(0, 1).Cast<float>();
        if (TNorm.NeedsLogSumExp)
        {
            var stats = device.Workspace.Get<float>(SlotStats, shape.LogSumExpLength);
            // Pass 1 writes its scratch output densely, whatever the output's layout.
            var scratchGeometry = geometry.WithDenseOutput(shape);
            var scratch = device.Workspace.Get<float>(SlotScratch, shape.OutputLength);
            Launch<TElement, TStorage, TScore, TMask, SoftmaxNormalizer, TSchedule>(device, shape,
                scratchGeometry, query, key, value, scratch, stats, unused, keyLengths, unused,
                score, mask, default, schedule, options);
            Launch<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(device, shape, geometry,
                query, key, value, output, logSumExp, stats, keyLengths, unused, score, mask,
                normalizer, schedule, options);
            return;
        }
        Launch<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(device, shape, geometry,
            query, key, value, output, logSumExp, unused, keyLengths, unused, score, mask,
            normalizer, schedule, options);
    }

    private static void Launch<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(
        ComputeDevice device, AttentionShape shape, AttentionGeometry g,
        ArrayView<TStorage> query, ArrayView<TStorage> key, ArrayView<TStorage> value,
        ArrayView<float> output, ArrayView<float> logSumExp, ArrayView<float> rowStats,
        ArrayView<int> keyLengths, ArrayView<float> unused, TScore score, TMask mask,
        TNorm normalizer, TSchedule schedule, AttentionOptions options)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        var (blockQ, _) = IlgpuTileSizes(shape);
        int queryTiles = (shape.SeqQ + blockQ - 1) / blockQ;
        var p = new GpuAttentionParams(shape.Batch, shape.Heads, shape.KvHeads, shape.SeqQ,
            shape.SeqK, shape.HeadDim, shape.ValueDim, shape.GroupSize,
            options.QueryOffsetFor(shape), queryTiles, options.ScaleFor(shape.HeadDim),
            logSumExp.Length > 0 ? 1 : 0, g.KeyLengths is null ? 0 : 1, g.ShiftByLength ? 1 : 0,
            g.Q.Batch, g.Q.Head, (int)g.Q.Row, g.K.Batch, g.K.Head, (int)g.K.Row,
            g.V.Batch, g.V.Head, (int)g.V.Row, g.O.Batch, g.O.Head, (int)g.O.Row);
        if (logSumExp.Length == 0) logSumExp = unused; // kernels take views either way
        if (rowStats.Length == 0) rowStats = unused;
        if (UsesTf32<TStorage, TNorm>(device, shape, g, key, value, options))
        {
            LaunchTf32(device, shape, query.Cast<float>(), key.Cast<float>(),
                value.Cast<float>(), output, logSumExp, rowStats, keyLengths, p, score, mask,
                normalizer, schedule, options.Tuning);
            return;
        }
        if (UsesTensorCores<TStorage, TNorm>(device, shape, g, query, key, value, options))
        {
            LaunchTensorCores(device, shape, query, key, value, output, logSumExp, rowStats,
                keyLengths, p, score, mask, normalizer, schedule, options.Tuning);
            return;
        }
        int grid = shape.Batch * shape.Heads * queryTiles;
        bool shuffle = UsesShuffle(device, options.Tuning ?? AttentionTuning.Default);
        // Dense rows take the 32-bit kernel while every tensor fits it.
        bool strided = !g.IsDense(shape) || shape.KeyLength > int.MaxValue
            || shape.QueryLength > int.MaxValue || shape.ValueLength > int.MaxValue
            || shape.OutputLength > int.MaxValue;
        var kernel = KernelFor<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(device,
            Math.Max(shape.HeadDim, shape.ValueDim), shuffle, strided, out int threads);
        kernel(device.Ilgpu.DefaultStream, new KernelConfig(grid, threads), query, key, value,
            output, logSumExp, rowStats, keyLengths, p, score, mask, normalizer, schedule);
    }

    /// <summary>Whether the kernel reduces rows with warp shuffles: where the device supports
    /// them (<see cref="ComputeDevice.SupportsWarpShuffles"/>) unless the tuning says otherwise;
    /// other devices get the shared-memory reduction.</summary>
    private static bool UsesShuffle(ComputeDevice device, AttentionTuning tuning)
    {
        bool canShuffle = device.SupportsWarpShuffles;
        return tuning.GpuReduction switch
        {
            GpuRowReduction.Shuffle => canShuffle ? true
                : throw new ArgumentException($"{device.Name} has no sub-group shuffles.",
                    "options"),
            GpuRowReduction.SharedMemory => false,
            _ => canShuffle,
        };
    }

    /// <summary>
    /// The loaded kernel for a variant and head dim: register-tiled up to 128 dims (64 or 128
    /// output columns), the general tiled kernel above; shuffle or shared-memory reductions.
    /// </summary>
    private static AttentionLauncher<TStorage, TScore, TMask, TNorm, TSchedule>
        KernelFor<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(ComputeDevice device,
            int dim, bool shuffle, bool strided, out int threads)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        threads = dim <= 128 ? RegisterTiledKernel.Threads
            : GpuTile256.BlockQ / GpuTile256.RowsPerThread
              * (GpuTile256.BlockK / GpuTile256.KeysPerThread);
        var method = KernelMethods<TElement, TStorage, TScore, TMask, TNorm, TSchedule>
            .For(dim, shuffle, strided);
        // O2: 1.02-1.36x faster than ILGPU's default O1 on the H200 (KernelCache.Get).
        return device.Kernels.Get<AttentionLauncher<TStorage, TScore, TMask, TNorm, TSchedule>>(
            method, ILGPU.OptimizationLevel.O2);
    }

    /// <summary>The (query, key) tile of the ILGPU kernel that runs <paramref name="shape"/>.
    /// </summary>
    internal static (int QueryTile, int KeyTile) IlgpuTileSizes(AttentionShape shape) =>
        Math.Max(shape.HeadDim, shape.ValueDim) <= 128
            ? (RegisterTiledKernel.BlockQ, RegisterTiledKernel.BlockK)
            : (GpuTile256.BlockQ, GpuTile256.BlockK);
}
