using System.Buffers;
using System.Runtime.InteropServices;
using Half = System.Half;
using ILGPU;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Attention;

/// <summary>
/// Exact softmax attention, tiled with an online softmax (FlashAttention), generic over a score
/// modifier and a mask predicate. O[b,h,i] = sum_k softmax_k(mod(scale q_i.k_k)) v_k over the
/// keys the mask allows; rows with no allowed key give O = 0 and log-sum-exp = -infinity.
/// A row that attends to a modified score of NaN or +infinity gives NaN output and NaN
/// log-sum-exp (exp(inf - inf) is NaN); -infinity always means "no weight".
/// <para>
/// Non-finite inputs: NaN or infinity in Q, K or V is not masked away: it propagates (IEEE
/// arithmetic) into a row that attends to it, and may reach rows of the same query tile whose
/// mask disallows that key when the key's tile is only partially masked for that query tile
/// (a masked weight is 0, and 0 * NaN = NaN, as in FlashAttention-2 and PyTorch's SDPA).
/// Keys in tiles the mask classifies Empty for a query tile are never read for that tile, and
/// keys at index &gt;= seqK are never read. Tiles are those of the backend: QueryTile x KeyTile
/// of <see cref="AttentionTuning"/> on the host, the kernel's fixed tiles on ILGPU devices.
/// </para>
/// </summary>
public static partial class FlashAttention
{
    /// <summary>
    /// Attention on host spans, run on <paramref name="device"/>: the host CPU (SIMD, parallel
    /// over batch, heads and query tiles) or an ILGPU device (inputs staged through the device's
    /// workspace, the results copied back before the call returns). O_i = sum_j w_ij v_j with
    /// the weights of <paramref name="normalizer"/> (softmax: <c>default(SoftmaxNormalizer)</c>),
    /// after <paramref name="score"/> and <paramref name="mask"/>; no seqQ x seqK buffer.
    /// Layouts are in <see cref="AttentionShape"/>. <paramref name="logSumExp"/> may be empty
    /// (not wanted) or (batch, heads, seqQ): ln(sum_j w_ij) per row, the natural-log
    /// log-sum-exp for softmax, -infinity for a row with no allowed key. A normalizer that needs
    /// the softmax log-sum-exp (clipped softmax) runs the kernel twice.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">A shape, length, option or operator is not valid,
    /// or an output overlaps another tensor; thrown before anything is written.</exception>
    public static void Forward<TScore, TMask, TNorm>(ComputeDevice device, AttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        Span<float> output, Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer =>
        Forward(device, shape, query, key, value, output, logSumExp, score, mask, normalizer,
            default(KeyRangeSchedule), options);

    /// <summary>
    /// As the overload without a schedule, visiting the key tiles <paramref name="schedule"/>
    /// lists (<see cref="IKeyTileSchedule"/>): a part of a split of the keys, a ring step, a
    /// block list. The result is attention over the keys of the visited tiles that the mask
    /// allows, and its log-sum-exp; the parts of a split merge with
    /// <see cref="AttentionMerge"/> for normalizers that divide by the weight sum (softmax,
    /// softplus); sigmoid parts add. A normalizer that runs two passes (clipped softmax) takes
    /// only <see cref="KeyRangeSchedule"/>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the overload without a schedule, or the schedule
    /// is not valid for the call.</exception>
    public static void Forward<TScore, TMask, TNorm, TSchedule>(ComputeDevice device,
        AttentionShape shape, ReadOnlySpan<float> query, ReadOnlySpan<float> key,
        ReadOnlySpan<float> value, Span<float> output, Span<float> logSumExp, TScore score,
        TMask mask, TNorm normalizer, TSchedule schedule, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule =>
        ForwardSpans<Float32Element, float, TScore, TMask, TNorm, TSchedule>(device, shape,
            query, key, value, output, logSumExp, score, mask, normalizer, schedule, options);

    /// <summary>
    /// As the float overload, with Q, K and V stored as <typeparamref name="TStorage"/>:
    /// <see cref="float"/>, <see cref="Half"/> or <see cref="BFloat16"/>. Elements are widened
    /// to float as they are loaded (exactly) and everything after runs in float; the output
    /// and log-sum-exp are float. The kernels are specialized on the storage type.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the float overload, or
    /// <typeparamref name="TStorage"/> is not one of the three storage types.</exception>
    public static void Forward<TStorage, TScore, TMask, TNorm>(ComputeDevice device,
        AttentionShape shape, ReadOnlySpan<TStorage> query, ReadOnlySpan<TStorage> key,
        ReadOnlySpan<TStorage> value, Span<float> output, Span<float> logSumExp, TScore score,
        TMask mask, TNorm normalizer, AttentionOptions options = default)
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer =>
        Forward(device, shape, query, key, value, output, logSumExp, score, mask, normalizer,
            default(KeyRangeSchedule), options);

    /// <summary>The typed span overload with a key-tile schedule.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the typed overload, or the schedule is not valid
    /// for the call.</exception>
    public static void Forward<TStorage, TScore, TMask, TNorm, TSchedule>(ComputeDevice device,
        AttentionShape shape, ReadOnlySpan<TStorage> query, ReadOnlySpan<TStorage> key,
        ReadOnlySpan<TStorage> value, Span<float> output, Span<float> logSumExp, TScore score,
        TMask mask, TNorm normalizer, TSchedule schedule, AttentionOptions options = default)
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        if (typeof(TStorage) == typeof(float))
            ForwardSpans<Float32Element, float, TScore, TMask, TNorm, TSchedule>(device, shape,
                MemoryMarshal.Cast<TStorage, float>(query), MemoryMarshal.Cast<TStorage, float>(key),
                MemoryMarshal.Cast<TStorage, float>(value), output, logSumExp, score, mask,
                normalizer, schedule, options);
        else if (typeof(TStorage) == typeof(Half))
            ForwardSpans<Float16Element, Half, TScore, TMask, TNorm, TSchedule>(device, shape,
                MemoryMarshal.Cast<TStorage, Half>(query), MemoryMarshal.Cast<TStorage, Half>(key),
                MemoryMarshal.Cast<TStorage, Half>(value), output, logSumExp, score, mask,
                normalizer, schedule, options);
        else if (typeof(TStorage) == typeof(BFloat16))
            ForwardSpans<BFloat16Element, BFloat16, TScore, TMask, TNorm, TSchedule>(device,
                shape, MemoryMarshal.Cast<TStorage, BFloat16>(query),
                MemoryMarshal.Cast<TStorage, BFloat16>(key),
                MemoryMarshal.Cast<TStorage, BFloat16>(value), output, logSumExp, score, mask,
                normalizer, schedule, options);
        else
            throw UnsupportedStorage<TStorage>();
    }

    private static ArgumentException UnsupportedStorage<TStorage>() =>
        new($"Q, K and V are stored as {typeof(TStorage).Name}; the kernels take float, Half "
            + "or BFloat16.", "query");

    private static void ForwardSpans<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(
        ComputeDevice device, AttentionShape shape, ReadOnlySpan<TStorage> query,
        ReadOnlySpan<TStorage> key, ReadOnlySpan<TStorage> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer, TSchedule schedule,
        AttentionOptions options)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        var geometry = ValidateCall(shape, query.Length, key.Length, value.Length, output.Length,
            logSumExp.Length, options);
        ValidateNoOverlap(MemoryMarshal.AsBytes(query), MemoryMarshal.AsBytes(key),
            MemoryMarshal.AsBytes(value), MemoryMarshal.AsBytes(output),
            MemoryMarshal.AsBytes(logSumExp));
        ValidateSchedule<TNorm, TSchedule>(schedule, shape, onDevice: !device.IsHost);
        if (device.IsHost)
            ForwardHost<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(shape, geometry,
                query, key, value, output, logSumExp, score, mask, normalizer, schedule, options);
        else
            ForwardStaged<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(device, shape,
                geometry, query, key, value, output, logSumExp, score, mask, normalizer,
                schedule, options);
    }

    /// <summary>The key tile of the kernel that <paramref name="device"/> runs for
    /// <paramref name="shape"/>: the unit of <see cref="IKeyTileSchedule"/> tile indices.
    /// </summary>
    public static int KeyTileOf(ComputeDevice device, AttentionShape shape,
        AttentionOptions options = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        return device.IsHost ? (options.Tuning ?? AttentionTuning.Default).KeyTile
            : IlgpuTileSizes(shape).KeyTile;
    }

    private static void ValidateSchedule<TNorm, TSchedule>(TSchedule schedule,
        AttentionShape shape, bool onDevice)
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        if (TNorm.NeedsLogSumExp && typeof(TSchedule) != typeof(KeyRangeSchedule))
            throw new ArgumentException(
                $"{typeof(TNorm).Name} runs two passes over every key; it takes only "
                + "KeyRangeSchedule.", "schedule");
        VariantChecks.Validate(schedule, shape, onDevice, "schedule");
    }

    /// <summary>
    /// Attention on views of <paramref name="device"/>'s accelerator (device-resident; layouts
    /// as in <see cref="AttentionShape"/>); <paramref name="logSumExp"/> may be an empty view.
    /// Enqueued on the device's stream: <see cref="ComputeDevice.Synchronize"/>, or copy on that
    /// stream, before reading the results. Otherwise as the span overload.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">The device is the host; a view is memory of another
    /// accelerator; an output overlaps another view; or a shape, length, option or operator is
    /// not valid (a table the kernel reads must be a DeviceTable of this device).</exception>
    public static void Forward<TScore, TMask, TNorm>(ComputeDevice device, AttentionShape shape,
        ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
        ArrayView<float> output, ArrayView<float> logSumExp, TScore score, TMask mask,
        TNorm normalizer, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer =>
        Forward(device, shape, query, key, value, output, logSumExp, score, mask, normalizer,
            default(KeyRangeSchedule), options);

    /// <summary>The view overload with a key-tile schedule; see the span overload with one.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the view overload, or the schedule is not valid
    /// for the call (a table it reads must be a DeviceTable of this device).</exception>
    public static void Forward<TScore, TMask, TNorm, TSchedule>(ComputeDevice device,
        AttentionShape shape, ArrayView<float> query, ArrayView<float> key,
        ArrayView<float> value, ArrayView<float> output, ArrayView<float> logSumExp,
        TScore score, TMask mask, TNorm normalizer, TSchedule schedule,
        AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule =>
        ForwardViews<Float32Element, float, TScore, TMask, TNorm, TSchedule>(device, shape,
            query, key, value, output, logSumExp, score, mask, normalizer, schedule, options);

    /// <summary>The view overload with Q, K and V stored as <typeparamref name="TStorage"/>
    /// (float, Half or BFloat16; see the typed span overload).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the float view overload, or
    /// <typeparamref name="TStorage"/> is not a storage type.</exception>
    public static void Forward<TStorage, TScore, TMask, TNorm>(ComputeDevice device,
        AttentionShape shape, ArrayView<TStorage> query, ArrayView<TStorage> key,
        ArrayView<TStorage> value, ArrayView<float> output, ArrayView<float> logSumExp,
        TScore score, TMask mask, TNorm normalizer, AttentionOptions options = default)
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer =>
        Forward(device, shape, query, key, value, output, logSumExp, score, mask, normalizer,
            default(KeyRangeSchedule), options);

    /// <summary>The typed view overload with a key-tile schedule.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    /// <exception cref="ArgumentException">As the typed view overload, or the schedule is not
    /// valid for the call.</exception>
    public static void Forward<TStorage, TScore, TMask, TNorm, TSchedule>(ComputeDevice device,
        AttentionShape shape, ArrayView<TStorage> query, ArrayView<TStorage> key,
        ArrayView<TStorage> value, ArrayView<float> output, ArrayView<float> logSumExp,
        TScore score, TMask mask, TNorm normalizer, TSchedule schedule,
        AttentionOptions options = default)
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        if (typeof(TStorage) == typeof(float))
            ForwardViews<Float32Element, float, TScore, TMask, TNorm, TSchedule>(device, shape,
                query.Cast<float>(), key.Cast<float>(), value.Cast<float>(), output, logSumExp,
                score, mask, normalizer, schedule, options);
        else if (typeof(TStorage) == typeof(Half))
            ForwardViews<Float16Element, Half, TScore, TMask, TNorm, TSchedule>(device, shape,
                query.Cast<Half>(), key.Cast<Half>(), value.Cast<Half>(), output, logSumExp,
                score, mask, normalizer, schedule, options);
        else if (typeof(TStorage) == typeof(BFloat16))
            ForwardViews<BFloat16Element, BFloat16, TScore, TMask, TNorm, TSchedule>(device,
                shape, query.Cast<BFloat16>(), key.Cast<BFloat16>(), value.Cast<BFloat16>(),
                output, logSumExp, score, mask, normalizer, schedule, options);
        else
            throw UnsupportedStorage<TStorage>();
    }

    private static void ForwardViews<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(
        ComputeDevice device, AttentionShape shape, ArrayView<TStorage> query,
        ArrayView<TStorage> key, ArrayView<TStorage> value, ArrayView<float> output,
        ArrayView<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        TSchedule schedule, AttentionOptions options)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        var geometry = ValidateCall(shape, query.Length, key.Length, value.Length, output.Length,
            logSumExp.Length, options);
        device.CheckOwns(query, nameof(query));
        device.CheckOwns(key, nameof(key));
        device.CheckOwns(value, nameof(value));
        device.CheckOwns(output, nameof(output));
        device.CheckOwns(logSumExp, nameof(logSumExp));
        ValidateNoOverlap(query, key, value, output, logSumExp);
        ValidateSchedule<TNorm, TSchedule>(schedule, shape, onDevice: true);
        ForwardIlgpu<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(device, shape,
            geometry, query, key, value, output, logSumExp, score, mask, normalizer, schedule,
            options);
    }

    /// <summary>The host path: validated operators, one or two CPU kernel passes.</summary>
    private static void ForwardHost<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(
        AttentionShape shape, AttentionGeometry geometry, ReadOnlySpan<TStorage> query,
        ReadOnlySpan<TStorage> key, ReadOnlySpan<TStorage> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer, TSchedule schedule,
        AttentionOptions options)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer
        where TSchedule : struct, IKeyTileSchedule
    {
        var tuning = options.Tuning ?? AttentionTuning.Default;
        VariantChecks.Validate(score, shape, onDevice: false, nameof(score));
        VariantChecks.Validate(mask, shape, onDevice: false, nameof(mask));
        if (!TNorm.NeedsLogSumExp)
        {
            ForwardCpu<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(shape, geometry,
                query, key, value, output, logSumExp, default, score, mask, normalizer, schedule,
                options, tuning);
            return;
        }
        // Pass 1: the softmax log-sum-exp of every row (its output is scratch, in the output's
        // layout); both buffers pooled, not allocated per call.
        float[] stats = ArrayPool<float>.Shared.Rent((int)shape.LogSumExpLength);
        float[] scratch = ArrayPool<float>.Shared.Rent(output.Length);
        try
        {
            var statsSpan = stats.AsSpan(0, (int)shape.LogSumExpLength);
            ForwardCpu<TElement, TStorage, TScore, TMask, SoftmaxNormalizer, TSchedule>(shape,
                geometry, query, key, value, scratch.AsSpan(0, output.Length), statsSpan, default,
                score, mask, default, schedule, options, tuning);
            ForwardCpu<TElement, TStorage, TScore, TMask, TNorm, TSchedule>(shape, geometry,
                query, key, value, output, logSumExp, statsSpan, score, mask, normalizer,
                schedule, options, tuning);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(stats);
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    /// <summary>
    /// Throws when an output span overlaps an input or the other output (their byte ranges
    /// meet); shared by every backend's span entry point, so all reject the same calls.
    /// </summary>
    /// <exception cref="ArgumentException">output overlaps query, key or value, or logSumExp
    /// (when not empty) overlaps any other tensor.</exception>
    internal static void ValidateNoOverlap(ReadOnlySpan<byte> query, ReadOnlySpan<byte> key,
        ReadOnlySpan<byte> value, ReadOnlySpan<byte> output, ReadOnlySpan<byte> logSumExp)
    {
        if (output.Overlaps(query) || output.Overlaps(key) || output.Overlaps(value))
            throw new ArgumentException("output must not overlap query, key or value.", nameof(output));
        if (!logSumExp.IsEmpty && (logSumExp.Overlaps(query) || logSumExp.Overlaps(key)
            || logSumExp.Overlaps(value) || logSumExp.Overlaps(output)))
            throw new ArgumentException("logSumExp must not overlap the other tensors.", nameof(logSumExp));
    }

    /// <summary>The device-view twin of the span overload: same buffer, byte ranges that meet.</summary>
    internal static void ValidateNoOverlap<TStorage>(ArrayView<TStorage> query,
        ArrayView<TStorage> key, ArrayView<TStorage> value, ArrayView<float> output,
        ArrayView<float> logSumExp)
        where TStorage : unmanaged
    {
        if (Overlaps(output, query) || Overlaps(output, key) || Overlaps(output, value))
            throw new ArgumentException("output must not overlap query, key or value.", nameof(output));
        if (Overlaps(logSumExp, query) || Overlaps(logSumExp, key) || Overlaps(logSumExp, value)
            || Overlaps(logSumExp, output))
            throw new ArgumentException("logSumExp must not overlap the other tensors.", nameof(logSumExp));
    }

    private static bool Overlaps<TA, TB>(ArrayView<TA> a, ArrayView<TB> b)
        where TA : unmanaged
        where TB : unmanaged
    {
        if (a.Length == 0 || b.Length == 0) return false;
        IContiguousArrayView x = a, y = b;
        return ReferenceEquals(x.Buffer, y.Buffer)
            && x.IndexInBytes < y.IndexInBytes + y.LengthInBytes
            && y.IndexInBytes < x.IndexInBytes + x.LengthInBytes;
    }

    /// <summary>Validates every length of a call against its shape and layout; shared by all
    /// backends. Returns the layout resolved against the shape.</summary>
    internal static AttentionGeometry ValidateCall(AttentionShape shape, long queryLength,
        long keyLength, long valueLength, long outputLength, long logSumExpLength,
        AttentionOptions options)
    {
        shape.Validate();
        options.Validate();
        if (options.QueryPosition is int position && (long)position + shape.SeqQ > int.MaxValue)
            throw new ArgumentException(
                $"QueryPosition {position} + SeqQ {shape.SeqQ} exceeds int.MaxValue.", "options");
        var layout = options.Layout;
        var s = shape;
        CheckTensor(queryLength, layout.Query, s.Heads, s.SeqQ, s.HeadDim, false, s, "query",
            $"batch {s.Batch} x heads {s.Heads} x seqQ {s.SeqQ} x headDim {s.HeadDim}");
        CheckTensor(keyLength, layout.Key, s.KvHeads, s.SeqK, s.HeadDim, false, s, "key",
            $"batch {s.Batch} x kvHeads {s.KvHeads} x seqK {s.SeqK} x headDim {s.HeadDim}");
        CheckTensor(valueLength, layout.Value, s.KvHeads, s.SeqK, s.ValueDim, false, s, "value",
            $"batch {s.Batch} x kvHeads {s.KvHeads} x seqK {s.SeqK} x valueDim {s.ValueDim}");
        CheckTensor(outputLength, layout.Output, s.Heads, s.SeqQ, s.ValueDim, true, s, "output",
            $"batch {s.Batch} x heads {s.Heads} x seqQ {s.SeqQ} x valueDim {s.ValueDim}");
        if (logSumExpLength != 0)
            AttentionShape.CheckLength(logSumExpLength, s.LogSumExpLength, "logSumExp",
                $"batch {s.Batch} x heads {s.Heads} x seqQ {s.SeqQ} (or empty)");
        if (layout.KeyLengths is { } lengths)
        {
            if (lengths.Length != s.Batch)
                throw new ArgumentException(
                    $"Layout.KeyLengths has {lengths.Length} entries; expected batch {s.Batch}.",
                    "options");
            for (int b = 0; b < lengths.Length; b++)
                if ((uint)lengths[b] > (uint)s.SeqK)
                    throw new ArgumentException(
                        $"Layout.KeyLengths[{b}] is {lengths[b]}; expected 0 to seqK {s.SeqK}.",
                        "options");
        }
        return new AttentionGeometry(shape, options);
    }

    private static void CheckTensor(long length, RowStrides? strides, int heads, int rows,
        int dim, bool written, AttentionShape s, string name, string layout)
    {
        if (strides is not { } st)
        {
            AttentionShape.CheckLength(length, (long)s.Batch * heads * rows * dim, name, layout);
            return;
        }
        st.Validate(s.Batch, heads, rows, dim, written, name);
        long extent = st.Extent(s.Batch, heads, rows, dim);
        if (length < extent)
            throw new ArgumentException(
                $"{name} has {length} elements; its strides {st} reach element {extent - 1} of "
                + $"{layout}.", name);
    }
}
