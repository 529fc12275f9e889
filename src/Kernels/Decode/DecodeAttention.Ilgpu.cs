using System.Runtime.InteropServices;
using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using Half = System.Half;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.TensorCores;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Decode;

/// <summary>Scalars of one decode launch, passed by value.</summary>
internal readonly record struct DecodeParams(int Batch, int Heads, int KvHeads, int Rows,
    int HeadDim, int ValueDim, int Splits, int QueryBlocks, int PageSize,
    int MaxPagesPerSequence, float Scale, int HasStats, int HasLogSumExp, int HasPositions)
{
    public int Capacity => PageSize * MaxPagesPerSequence;

    public int Group => Heads / KvHeads;
    public int Vectors => Group * Rows;
}

internal delegate void DecodeLauncher<TStorage, TScore, TMask, TNorm>(AcceleratorStream stream,
    KernelConfig config, ArrayView<float> query, ArrayView<TStorage> keys,
    ArrayView<TStorage> values, ArrayView<int> pageTable, ArrayView<int> lengths,
    ArrayView<int> kept, ArrayView<int> positions, ArrayView<int> compensationSlot,
    ArrayView<float> compensationLogCount, ArrayView<float> rowStats, ArrayView<float> partO, ArrayView<float> partM,
    ArrayView<float> partL, DecodeParams p, TScore score, TMask mask, TNorm norm)
    where TStorage : unmanaged;

internal delegate void DecodeMergeLauncher<TNorm>(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> partO, ArrayView<float> partM, ArrayView<float> partL,
    ArrayView<float> output, ArrayView<float> logSumExp, DecodeParams p, TNorm norm);

// The ILGPU path: one group per (sequence, KV head, part, block of query vectors), then a merge
// kernel over the parts. Runs under the device's lease.
public static partial class DecodeAttention
{
    /// <summary>Largest headDim and valueDim of the ILGPU decode kernel.</summary>
    public const int MaxIlgpuDim = 256;

    private const int SlotQuery = 0, SlotOutput = 1, SlotLse = 2, SlotPartO = 3, SlotPartM = 4,
        SlotPartL = 5, SlotStats = 6, SlotScratch = 7;

    private static void RunIlgpu<TElement, TStorage, TScore, TMask, TNorm>(KvCache<TStorage> cache,
        DecodeProblem pr, ArrayView<float> query, ArrayView<float> output,
        ArrayView<float> logSumExp, TScore score, TMask mask, TNorm norm)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        var ws = cache.Device.Workspace;
        int rows = pr.Batch * pr.Heads * pr.Rows;
        if (!TNorm.NeedsLogSumExp)
        {
            IlgpuPass<TElement, TStorage, TScore, TMask, TNorm>(cache, pr, query, output,
                logSumExp, default, score, mask, norm);
            return;
        }
        var stats = ws.Get<float>(SlotStats, rows);
        var scratch = ws.Get<float>(SlotScratch, output.Length);
        IlgpuPass<TElement, TStorage, TScore, TMask, SoftmaxNormalizer>(cache, pr, query, scratch,
            stats, default, score, mask, default);
        IlgpuPass<TElement, TStorage, TScore, TMask, TNorm>(cache, pr, query, output, logSumExp,
            stats, score, mask, norm);
    }

    /// <summary>Whether a decode of this storage type and normalizer runs on the tensor
    /// cores: fp16 or bf16 storage on CUDA, softmax normalization, head and value dims 64 or
    /// 128 (<see cref="MmaDecodeKernel"/>). Everything else runs on the CUDA cores.</summary>
    internal static bool UsesTensorCores<TStorage, TNorm>(ComputeDevice device, int headDim,
        int valueDim, bool emulate = false)
        where TStorage : unmanaged
        where TNorm : struct, INormalizer =>
        (device.Accelerator?.AcceleratorType == AcceleratorType.Cuda
            || emulate && device.Accelerator?.AcceleratorType == AcceleratorType.CPU)
        && (typeof(TStorage) == typeof(Half) || typeof(TStorage) == typeof(BFloat16))
        && TNorm.IsSoftmax && MmaDecodeKernel.Fits(headDim, valueDim);

    /// <summary>Query vectors per tensor-core group: up to 8 run with the keys as the mma's
    /// rows (<see cref="MmaKeyRowDecodeKernel"/>), more in blocks of 16 with the vectors as
    /// its rows (<see cref="MmaDecodeKernel"/>).</summary>
    internal static int MmaBlock(int vectors) => vectors <= MmaKeyRowDecodeKernel.Vectors
        ? MmaKeyRowDecodeKernel.Vectors : MmaDecodeKernel.Vectors;

    /// <summary>The tensor-core kernel of the storage type and block: inline PTX on CUDA,
    /// emulated elsewhere (tests).</summary>
    private static MethodInfo MmaDecodeMethod<TElement, TStorage, TScore, TMask, TNorm>(
        DecodeProblem pr, bool cuda)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        bool half = typeof(TStorage) == typeof(Half);
        bool keyRows = MmaBlock(pr.Vectors) == MmaKeyRowDecodeKernel.Vectors;
        return (cuda, half) switch
        {
            (true, true) => MmaDecodeMethods<TElement, TStorage, TensorCoreHalf, TScore, TMask,
                TNorm>.Decode(pr.HeadDim, pr.ValueDim, keyRows),
            (true, false) => MmaDecodeMethods<TElement, TStorage, TensorCoreBFloat16, TScore,
                TMask, TNorm>.Decode(pr.HeadDim, pr.ValueDim, keyRows),
            (false, true) => MmaDecodeMethods<TElement, TStorage, EmulatedHalf, TScore, TMask,
                TNorm>.Decode(pr.HeadDim, pr.ValueDim, keyRows),
            (false, false) => MmaDecodeMethods<TElement, TStorage, EmulatedBFloat16, TScore,
                TMask, TNorm>.Decode(pr.HeadDim, pr.ValueDim, keyRows),
        };
    }

    private static void IlgpuPass<TElement, TStorage, TScore, TMask, TNorm>(
        KvCache<TStorage> cache, DecodeProblem pr, ArrayView<float> query,
        ArrayView<float> output, ArrayView<float> logSumExp, ArrayView<float> rowStats,
        TScore score, TMask mask, TNorm norm)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        var device = cache.Device;
        var ws = device.Workspace;
        bool tensorCores = pr.TensorCores;
        var (dims, lanes) = DecodeKernel.ShapeFor(pr.HeadDim, pr.ValueDim);
        bool words = DecodeKernel.WordsFit(pr.HeadDim, pr.ValueDim, dims,
            Marshal.SizeOf<TStorage>());
        int block = tensorCores ? MmaBlock(pr.Vectors) : DecodeKernel.VectorsFor(pr.Vectors);
        int queryBlocks = (pr.Vectors + block - 1) / block;
        int items = pr.Batch * pr.KvHeads * pr.Splits;
        var partO = ws.Get<float>(SlotPartO, (long)items * pr.Vectors * pr.ValueDim);
        var partM = ws.Get<float>(SlotPartM, (long)items * pr.Vectors);
        var partL = ws.Get<float>(SlotPartL, (long)items * pr.Vectors);
        var p = new DecodeParams(pr.Batch, pr.Heads, pr.KvHeads, pr.Rows, pr.HeadDim,
            pr.ValueDim, pr.Splits, queryBlocks, cache.PageSize, cache.MaxPagesPerSequence,
            pr.Scale, rowStats.Length > 0 ? 1 : 0, logSumExp.Length > 0 ? 1 : 0,
            cache.HasPositions ? 1 : 0);
        if (rowStats.Length == 0) rowStats = partM; // bound, never read
        if (logSumExp.Length == 0) logSumExp = partM; // bound, never written
        // Shuffles on CUDA; elsewhere shared memory (the ILGPU CPU accelerator pays a warp
        // barrier per shuffle, and most OpenCL devices have none).
        bool shuffle = device.Ilgpu.AcceleratorType == AcceleratorType.Cuda;
        var method = !tensorCores
            ? DecodeMethods<TElement, TStorage, TScore, TMask, TNorm>.Decode(dims, lanes, block,
                shuffle, words)
            : MmaDecodeMethod<TElement, TStorage, TScore, TMask, TNorm>(pr, shuffle);
        var decode = device.Kernels.Get<DecodeLauncher<TStorage, TScore, TMask, TNorm>>(method);
        decode(device.Ilgpu.DefaultStream, new KernelConfig(items * queryBlocks,
                tensorCores ? MmaDecodeKernel.Threads : DecodeKernel.Threads), query, cache.DeviceKeys, cache.DeviceValues,
            cache.DevicePageTable, cache.DeviceLengths, cache.DeviceKept, cache.DevicePositions,
            cache.DeviceCompensationSlot, cache.DeviceCompensationLogCount, rowStats, partO, partM, partL,
            p, score, mask, norm);
        var merge = device.Kernels.Get<DecodeMergeLauncher<TNorm>>(
            DecodeMethods<TElement, TStorage, TScore, TMask, TNorm>.Merge);
        merge(device.Ilgpu.DefaultStream, new KernelConfig(
            DecodeMergeKernel.Groups(pr.Batch * pr.Heads * pr.Rows, pr.ValueDim),
            DecodeMergeKernel.Threads), partO, partM, partL, output, logSumExp, p, norm);
    }
}

/// <summary>The tensor-core decode kernels of one variant and 16-bit storage type, made once
/// per (head dim, value dim) class.</summary>
internal static class MmaDecodeMethods<TElement, TStorage, TCore, TScore, TMask, TNorm>
    where TElement : struct, IElement<TStorage>
    where TStorage : unmanaged
    where TCore : struct, ITensorCoreType
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate
    where TNorm : struct, INormalizer
{
    private static readonly MethodInfo?[] s_decode = new MethodInfo?[8];

    /// <summary>The kernel for head and value dims of 64 or 128 each, with the keys
    /// (<see cref="MmaKeyRowDecodeKernel"/>, up to 8 vectors) or the vectors
    /// (<see cref="MmaDecodeKernel"/>, up to 16) as the mma's rows.</summary>
    public static MethodInfo Decode(int headDim, int valueDim, bool keyRows)
    {
        if (!MmaDecodeKernel.Fits(headDim, valueDim))
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim,
                $"The tensor-core decode kernel takes head and value dims of 64 or 128, got "
                + $"{headDim} and {valueDim}.");
        int slot = (keyRows ? 4 : 0) + (headDim == 128 ? 2 : 0) + (valueDim == 128 ? 1 : 0);
        // Count types: k-steps of 16 head dims; n-tiles of 8 value dims (vector rows) or
        // m-tiles of 16 (key rows).
        var steps = headDim == 128 ? typeof(Count8) : typeof(Count4);
        return s_decode[slot] ??= keyRows
            ? typeof(MmaKeyRowDecodeKernel).GetMethod(nameof(MmaKeyRowDecodeKernel.Partial))!
                .MakeGenericMethod(typeof(TElement), typeof(TStorage), typeof(TCore),
                    typeof(TScore), typeof(TMask), typeof(TNorm), steps,
                    valueDim == 128 ? typeof(Count8) : typeof(Count4))
            : typeof(MmaDecodeKernel).GetMethod(nameof(MmaDecodeKernel.Partial))!
                .MakeGenericMethod(typeof(TElement), typeof(TStorage), typeof(TCore),
                    typeof(TScore), typeof(TMask), typeof(TNorm), steps,
                    valueDim == 128 ? typeof(Count16) : typeof(Count8));
    }
}

/// <summary>The decode kernels of one variant and storage type, made once per shape class.
/// </summary>
internal static class DecodeMethods<TElement, TStorage, TScore, TMask, TNorm>
    where TElement : struct, IElement<TStorage>
    where TStorage : unmanaged
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate
    where TNorm : struct, INormalizer
{
    private static readonly MethodInfo?[] s_decode = new MethodInfo?[5 * 5 * 3 * 2 * 2];

    /// <summary>The kernel for <paramref name="dims"/> dims per lane (4, 8 or 16),
    /// <paramref name="lanes"/> lanes per key (8 or 16), <paramref name="vectors"/> query
    /// vectors per group (1, 2 or 4), shuffles or shared memory, word or element loads.
    /// </summary>
    public static MethodInfo Decode(int dims, int lanes, int vectors, bool shuffle, bool words)
    {
        if (vectors > DecodeKernel.MaxVectors)
            throw new ArgumentOutOfRangeException(nameof(vectors), vectors,
                $"The decode kernel takes at most {DecodeKernel.MaxVectors} vectors per group.");
        int slot = (((Log2(dims) * 5 + Log2(lanes)) * 3 + Log2(vectors)) * 2
            + (shuffle ? 1 : 0)) * 2 + (words ? 1 : 0);
        return s_decode[slot] ??= typeof(DecodeKernel).GetMethod(nameof(DecodeKernel.Partial))!
            .MakeGenericMethod(typeof(TElement), typeof(TStorage), typeof(TScore), typeof(TMask),
                typeof(TNorm), CountType(dims), CountType(lanes), CountType(vectors),
                shuffle ? typeof(ShuffleReduction) : typeof(SharedMemoryReduction),
                words ? typeof(WordLoads) : typeof(ElementLoads));
    }

    public static readonly MethodInfo Merge = typeof(DecodeMergeKernel)
        .GetMethod(nameof(DecodeMergeKernel.Merge))!.MakeGenericMethod(typeof(TNorm));

    private static int Log2(int n) => n switch { 1 => 0, 2 => 1, 4 => 2, 8 => 3, _ => 4 };

    private static Type CountType(int n) => n switch
    {
        1 => typeof(Count1), 2 => typeof(Count2), 4 => typeof(Count4), 8 => typeof(Count8),
        _ => typeof(Count16),
    };
}
