using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Kernels.Decode;

/// <summary>Per-call options of decode.</summary>
public readonly record struct DecodeOptions
{
    /// <summary>Multiplier of q.k; null means 1/sqrt(headDim).</summary>
    public float? Scale { get; init; }

    /// <summary>Parts each sequence's keys are split into (processed apart, then merged);
    /// null: <see cref="DecodeAttention.SplitsFor"/>. Tuning only: results agree to rounding.
    /// </summary>
    public int? Splits { get; init; }

    /// <summary>Host threads; null: all processors.</summary>
    public int? MaxDegreeOfParallelism { get; init; }

    /// <summary>Host threads that stay awake between calls (their team size replaces
    /// MaxDegreeOfParallelism), so smaller calls are worth splitting over them; null: the
    /// thread pool.</summary>
    public HostWorkers? Workers { get; init; }

    /// <summary>Tests: run the tensor-core kernel (fp16/bf16 storage, softmax) on the ILGPU
    /// CPU accelerator, its mma emulated with warp shuffles.</summary>
    internal bool EmulateTensorCores { get; init; }
}

/// <summary>
/// Attention of a few new query rows per sequence over a <see cref="KvCache{TStorage}"/>
/// (decode, speculative verification): split-KV (Flash-Decoding). A sequence holding fewer
/// rows than queryRows gives its first rows negative positions (no key under causal masks:
/// zeros and -infinity), and an empty one zeros and -infinity everywhere. Each (sequence, KV head)'s
/// keys are split into parts processed apart, the query heads sharing a KV head together (each
/// K and V row is read once per part for all of them), and the partial (output, log-sum-exp)
/// pairs merged. Query rows (batch, heads, queryRows, headDim) are float; row r of sequence b
/// sits at position Length(b) - queryRows + r (the rows are its newest tokens, already
/// appended). The variant structs are those of <see cref="FlashAttention"/>, with the same
/// contract (zeros and -infinity for a row with no allowed key, NaN propagation); the mask
/// bounds the keys read at all (<see cref="IMaskPredicate.KeyStart"/>, KeyEnd and Classify on
/// 64-key tiles), so a window of W reads about W keys whatever the length. After an eviction
/// (<see cref="KvCache{TStorage}.Retain"/>) each KV head reads only its kept rows, at their
/// original positions (masks and score modifiers see those), and a compensation row's score
/// gets + ln N (N the tokens it stands for) after the score modifier, where the mask allows it.
/// </summary>
public static partial class DecodeAttention
{
    /// <summary>Most query rows per sequence.</summary>
    public const int MaxQueryRows = 16;

    /// <summary>Multiply-adds below which a host call runs on the calling thread: on the
    /// thread pool, and on <see cref="DecodeOptions.Workers"/> (which start faster).</summary>
    private const long HostSerialWork = 1 << 18, WorkersSerialWork = 1 << 15;

    /// <summary>Decode groups one multiprocessor holds at once: 128 threads of 220-250
    /// registers each (ptxas, sm_90) fill 2 of its 64k registers' worth.</summary>
    private const int ResidentDecodeGroups = 2;

    /// <summary>Tensor-core decode groups counted per multiprocessor for one wave: 2. The H200's
    /// driver JIT gives the key-row kernel 241-254 registers a thread (ncu), so 2 groups of
    /// 128 threads fit and 49 parts ran as two waves (fp16, batch 1, 32k keys: decode kernel
    /// 94 us against 64 us at 33 parts). Launch bounds asking ptxas for 3 groups (168
    /// registers, 384-452 bytes spilled) ran at 0.58-0.66x, and bounds for 2 at 0.90-0.95x of
    /// no bounds (2026-12-03).</summary>
    private const int ResidentMmaDecodeGroups = 2;

    /// <summary>
    /// The split rule, no part shorter than 256 keys. Host: enough parts for 2 work items per
    /// processor, parts = clamp(ceil(2 x processors / (batch x kvHeads)), 1,
    /// ceil(maxLength / 256)). ILGPU: one wave of groups, as many as the device holds at once
    /// (2 per multiprocessor, 16 multiprocessors where unknown): parts = clamp(floor(2 x
    /// multiprocessors / (batch x kvHeads x query blocks)), 1, ceil(maxLength / 256)), a
    /// query block being up to 4 of the queryVectors = heads / kvHeads x rows vectors. On the
    /// H200 a second, partial wave cost more than the longer parts of one (batch 1, 128k fp32
    /// keys: 33 parts 76 % of the copy bandwidth, 66 parts 68 %). This is the rule of the
    /// CUDA-core kernel; fp16 and bf16 caches with softmax on CUDA run on the tensor cores,
    /// whose query blocks are 16 vectors.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A count is not positive.</exception>
    public static int SplitsFor(ComputeDevice device, int batch, int kvHeads, int maxLength,
        int queryVectors = 1) =>
        SplitsForKernel(device, batch, kvHeads, maxLength, queryVectors, tensorCores: false);

    /// <summary>The parts <see cref="Forward{TStorage, TScore, TMask, TNorm}(KvCache{TStorage},
    /// int, int, ReadOnlySpan{float}, Span{float}, Span{float}, TScore, TMask, TNorm,
    /// DecodeOptions)"/> chooses for softmax attention over this cache with no Splits given:
    /// the rule of <see cref="SplitsFor(ComputeDevice, int, int, int, int)"/> for the kernel
    /// the call runs (on CUDA, fp16 and bf16 caches of head and value dims 64 or 128 run on
    /// the tensor cores).</summary>
    /// <exception cref="ArgumentNullException">cache is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A count is not positive.</exception>
    public static int SplitsFor<TStorage>(KvCache<TStorage> cache, int heads, int queryRows)
        where TStorage : unmanaged
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queryRows);
        bool tensorCores = UsesTensorCores<TStorage, SoftmaxNormalizer>(cache.Device,
            cache.HeadDim, cache.ValueDim);
        int maxKept = cache.HostKept.Max();
        int splits = SplitsForKernel(cache.Device, cache.Batch, cache.KvHeads, maxKept,
            Math.Max(1, heads / cache.KvHeads) * queryRows, tensorCores);
        return Math.Min(splits, Math.Max(1, maxKept));
    }

    /// <summary>The split rule for the kernel a call runs: on the tensor cores a query block
    /// is up to 8 or 16 vectors (<see cref="MmaBlock"/>) and a multiprocessor holds <see cref="ResidentMmaDecodeGroups"/>
    /// groups.</summary>
    internal static int SplitsForKernel(ComputeDevice device, int batch, int kvHeads,
        int maxLength, int queryVectors, bool tensorCores)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvHeads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queryVectors);
        long items = (long)batch * kvHeads;
        int most = Math.Max(1, (maxLength + 255) / 256);
        long wanted;
        if (device.IsHost)
            wanted = (2L * Environment.ProcessorCount + items - 1) / items;
        else
        {
            int block = tensorCores ? MmaBlock(queryVectors)
                : DecodeKernel.VectorsFor(queryVectors);
            long groups = items * ((queryVectors + block - 1) / block);
            long slots = (long)(tensorCores ? ResidentMmaDecodeGroups : ResidentDecodeGroups)
                * Math.Max(1, device.Accelerator?.NumMultiprocessors ?? 16);
            wanted = slots / groups;
        }
        return (int)Math.Clamp(wanted, 1, most);
    }

    /// <summary>
    /// Decode on host spans: query (batch, heads, queryRows, headDim), output (batch, heads,
    /// queryRows, valueDim), logSumExp empty or (batch, heads, queryRows). On an ILGPU device
    /// the query and results are staged through its workspace.
    /// </summary>
    /// <exception cref="ArgumentNullException">cache is null.</exception>
    /// <exception cref="ObjectDisposedException">The cache or its device is disposed.</exception>
    /// <exception cref="ArgumentException">A count, length or operator is not valid, or an
    /// output overlaps the query; thrown before anything is written.</exception>
    public static void Forward<TStorage, TScore, TMask, TNorm>(KvCache<TStorage> cache,
        int heads, int queryRows, ReadOnlySpan<float> query, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        DecodeOptions options = default)
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        ArgumentNullException.ThrowIfNull(cache);
        cache.ThrowIfDisposed();
        var device = cache.Device;
        using var lease = device.Use();
        var problem = Validate<TStorage, TScore, TMask, TNorm>(cache, heads, queryRows,
            query.Length, output.Length, logSumExp.Length, score, mask, options);
        if (output.Overlaps(query) || (!logSumExp.IsEmpty
            && (logSumExp.Overlaps(query) || logSumExp.Overlaps(output))))
            throw new ArgumentException("output and logSumExp must not overlap the query or "
                + "each other.", nameof(output));
        if (device.IsHost)
        {
            if (typeof(TStorage) == typeof(float))
                ForwardHost<Float32Element, float, TScore, TMask, TNorm>(
                    (KvCache<float>)(object)cache, problem, query, output, logSumExp, score, mask,
                    normalizer, options);
            else if (typeof(TStorage) == typeof(Half))
                ForwardHost<Float16Element, Half, TScore, TMask, TNorm>(
                    (KvCache<Half>)(object)cache, problem, query, output, logSumExp, score, mask,
                    normalizer, options);
            else
                ForwardHost<BFloat16Element, BFloat16, TScore, TMask, TNorm>(
                    (KvCache<BFloat16>)(object)cache, problem, query, output, logSumExp, score,
                    mask, normalizer, options);
            return;
        }
        var ws = device.Workspace;
        var q = ws.Get<float>(SlotQuery, query.Length);
        var o = ws.Get<float>(SlotOutput, output.Length);
        var lse = logSumExp.IsEmpty ? default : ws.Get<float>(SlotLse, logSumExp.Length);
        q.CopyFromCPU(query);
        ForwardDevice(cache, problem, q, o, lse, score, mask, normalizer);
        o.CopyToCPU(output);
        if (!logSumExp.IsEmpty) lse.CopyToCPU(logSumExp);
        device.Ilgpu.Synchronize();
    }

    /// <summary>Decode on views of the cache's device (enqueued on its stream); otherwise as
    /// the span overload.</summary>
    /// <exception cref="ArgumentNullException">cache is null.</exception>
    /// <exception cref="ObjectDisposedException">The cache or its device is disposed.</exception>
    /// <exception cref="ArgumentException">As the span overload, the cache is on the host, or
    /// a view is memory of another accelerator.</exception>
    public static void Forward<TStorage, TScore, TMask, TNorm>(KvCache<TStorage> cache,
        int heads, int queryRows, ArrayView<float> query, ArrayView<float> output,
        ArrayView<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        DecodeOptions options = default)
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        ArgumentNullException.ThrowIfNull(cache);
        cache.ThrowIfDisposed();
        var device = cache.Device;
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException("A host cache takes spans.", nameof(cache));
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(logSumExp, nameof(logSumExp));
        var problem = Validate<TStorage, TScore, TMask, TNorm>(cache, heads, queryRows,
            query.Length, output.Length, logSumExp.Length, score, mask, options);
        ForwardDevice(cache, problem, query, output, logSumExp, score, mask, normalizer);
    }

    private static void ForwardDevice<TStorage, TScore, TMask, TNorm>(KvCache<TStorage> cache,
        DecodeProblem problem, ArrayView<float> query, ArrayView<float> output,
        ArrayView<float> logSumExp, TScore score, TMask mask, TNorm normalizer)
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        TableOwnership.Check(score, cache.Device.Ilgpu, nameof(score));
        TableOwnership.Check(mask, cache.Device.Ilgpu, nameof(mask));
        if (typeof(TStorage) == typeof(float))
            RunIlgpu<Float32Element, float, TScore, TMask, TNorm>((KvCache<float>)(object)cache,
                problem, query, output, logSumExp, score, mask, normalizer);
        else if (typeof(TStorage) == typeof(Half))
            RunIlgpu<Float16Element, Half, TScore, TMask, TNorm>((KvCache<Half>)(object)cache,
                problem, query, output, logSumExp, score, mask, normalizer);
        else
            RunIlgpu<BFloat16Element, BFloat16, TScore, TMask, TNorm>(
                (KvCache<BFloat16>)(object)cache, problem, query, output, logSumExp, score, mask,
                normalizer);
    }

    private static DecodeProblem Validate<TStorage, TScore, TMask, TNorm>(
        KvCache<TStorage> cache, int heads, int queryRows, long queryLength, long outputLength,
        long logSumExpLength, TScore score, TMask mask, DecodeOptions options)
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
    {
        if (heads <= 0 || heads % cache.KvHeads != 0)
            throw new ArgumentException(
                $"heads ({heads}) must be a positive multiple of the cache's kvHeads "
                + $"({cache.KvHeads}).", nameof(heads));
        if (queryRows < 1 || queryRows > MaxQueryRows)
            throw new ArgumentException(
                $"queryRows must be 1 to {MaxQueryRows}, got {queryRows}.", nameof(queryRows));
        int b = cache.Batch, d = cache.HeadDim, dv = cache.ValueDim;
        CheckLength(queryLength, (long)b * heads * queryRows * d, "query",
            $"batch {b} x heads {heads} x queryRows {queryRows} x headDim {d}");
        CheckLength(outputLength, (long)b * heads * queryRows * dv, "output",
            $"batch {b} x heads {heads} x queryRows {queryRows} x valueDim {dv}");
        if (logSumExpLength != 0)
            CheckLength(logSumExpLength, (long)b * heads * queryRows, "logSumExp",
                $"batch {b} x heads {heads} x queryRows {queryRows} (or empty)");
        if (options.Scale is { } s && !float.IsFinite(s))
            throw new ArgumentException($"Scale must be finite, got {s}.", nameof(options));
        if (options.Splits is < 1)
            throw new ArgumentException($"Splits must be positive, got {options.Splits}.",
                nameof(options));
        if (options.MaxDegreeOfParallelism is < 1)
            throw new ArgumentException(
                $"MaxDegreeOfParallelism must be positive, got {options.MaxDegreeOfParallelism}.",
                nameof(options));
        if (!cache.Device.IsHost && (d > MaxIlgpuDim || dv > MaxIlgpuDim))
            throw new ArgumentException(
                $"headDim ({d}) and valueDim ({dv}) must be <= {MaxIlgpuDim} on ILGPU devices.",
                nameof(cache));
        // After an eviction positions run past the capacity: up to the longest sequence.
        int maxLength = cache.HostLengths.Max(), maxKept = cache.HostKept.Max();
        var shape = new AttentionShape(b, heads, cache.KvHeads, queryRows,
            Math.Max(cache.Capacity, maxLength), d, dv);
        VariantChecks.Validate(score, shape, onDevice: !cache.Device.IsHost, nameof(score));
        VariantChecks.Validate(mask, shape, onDevice: !cache.Device.IsHost, nameof(mask));
        bool tensorCores = UsesTensorCores<TStorage, TNorm>(cache.Device, d, dv,
            options.EmulateTensorCores);
        int splits = options.Splits ?? SplitsForKernel(cache.Device, b, cache.KvHeads, maxKept,
            heads / cache.KvHeads * queryRows, tensorCores);
        // Host: a call this small runs on the calling thread (waking workers costs more than
        // the work: a small model's decode step calls this once per layer); the parts and
        // so the results are the same.
        long work = (long)b * heads * queryRows * maxKept * (d + dv);
        int threads = work < (options.Workers is null ? HostSerialWork : WorkersSerialWork) ? 1
            : options.Workers?.Threads ?? options.MaxDegreeOfParallelism
            ?? Environment.ProcessorCount;
        return new DecodeProblem(b, heads, cache.KvHeads, queryRows, d, dv,
            Math.Min(splits, Math.Max(1, maxKept)), options.Scale ?? 1f / MathF.Sqrt(d),
            threads, tensorCores, options.Workers);
    }

    private static void CheckLength(long actual, long expected, string name, string layout)
    {
        if (actual != expected)
            throw new ArgumentException(
                $"{name} has {actual} elements; expected {expected} = {layout}.", name);
    }
}

/// <summary>One decode call's sizes: G = heads / kvHeads query heads per KV head, QN = G x rows
/// query vectors per (sequence, KV head), Splits parts of each (sequence, KV head)'s kept rows;
/// whether an ILGPU device runs it on the tensor cores.</summary>
internal readonly record struct DecodeProblem(int Batch, int Heads, int KvHeads, int Rows,
    int HeadDim, int ValueDim, int Splits, float Scale, int Threads, bool TensorCores,
    HostWorkers? Workers = null)
{
    public int Group => Heads / KvHeads;
    public int Vectors => Group * Rows;

    /// <summary>Slots of part s of a head holding <paramref name="length"/> rows: parts of
    /// ceil(length / splits) slots rounded up to 16.</summary>
    public static (int Start, int End) Part(int length, int splits, int s)
    {
        int chunk = ((length + splits - 1) / splits + 15) & ~15;
        long start = (long)s * chunk;
        return ((int)Math.Min(start, length), (int)Math.Min(start + chunk, length));
    }
}
