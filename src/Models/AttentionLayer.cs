using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Decode;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Models;

/// <summary>How the tokens of one forward call relate to the KV caches.</summary>
internal enum CallKind : byte
{
    /// <summary>Rows tokens of one empty sequence: FlashAttention over their own keys.
    /// </summary>
    Prefill,
    /// <summary>At most <see cref="DecodeAttention.MaxQueryRows"/> tokens appended to one
    /// sequence that holds some already: decode attention with several query rows.</summary>
    Chunk,
    /// <summary>One token for each of sequences 0 .. rows − 1: a batched decode step.
    /// </summary>
    Step,
}

/// <summary>One forward call: its kind, the sequence (Prefill, Chunk) and the token rows.
/// </summary>
internal readonly record struct ForwardCall(CallKind Kind, int Sequence, int Rows);

/// <summary>
/// A layer's attention over its KV cache: appends the call's keys and values, then runs
/// FlashAttention (prefill) or DecodeAttention (chunk, step) with the model's variant,
/// combined with the layer's sliding window. Made by <see cref="Bind"/>, which closes the
/// operator types once at load so no call dispatches on them.
/// </summary>
internal abstract class AttentionLayer : IDisposable
{
    /// <summary>Attention output (rows, heads · headDim) of q (rows, heads · headDim), k and
    /// v (rows, kvHeads · headDim), all token-major; k and v are appended to the cache.
    /// q, k and v are RoPE-rotated already.</summary>
    public abstract void Forward(ForwardCall call, Act q, Act k, Act v, Act output);

    /// <summary>Tokens sequence <paramref name="sequence"/> holds.</summary>
    public abstract int Length(int sequence);

    /// <summary>Empties every sequence.</summary>
    public abstract void Reset();

    public abstract void Dispose();

    /// <summary>The layer's attention: <paramref name="variant"/> (bound for the head count)
    /// and, when <paramref name="window"/> is set, a causal window of that many keys.</summary>
    public static AttentionLayer Bind<TStorage>(AttentionScratch<TStorage> scratch,
        VariantSpec variant, int? window) where TStorage : unmanaged
    {
        var binder = new Binder<TStorage>(scratch, window);
        variant.Bind(scratch.Heads).Accept(binder);
        return binder.Layer!;
    }

    private sealed class Binder<TStorage>(AttentionScratch<TStorage> scratch, int? window)
        : IVariantVisitor where TStorage : unmanaged
    {
        public AttentionLayer? Layer;

        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask,
            TNorm norm)
            where TScore : struct, IScoreModifier
            where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer =>
            Layer = window is { } w
                ? new AttentionLayer<TStorage, TScore, And<TMask, SlidingWindowMask>, TNorm>(
                    scratch, score, new(mask, SlidingWindowMask.Causal(w)), norm)
                : new AttentionLayer<TStorage, TScore, TMask, TNorm>(scratch, score, mask, norm);
    }
}

/// <summary>The sizes and scratch buffers the attention layers of one run state share.
/// </summary>
internal sealed class AttentionScratch<TStorage> : IDisposable where TStorage : unmanaged
{
    /// <summary>Rows of one cache append (a prefill appends in parts of this many).</summary>
    public const int AppendRows = 64;

    public AttentionScratch(ComputeDevice device, Blocks blocks, int batch, int heads,
        int kvHeads, int headDim, int capacity, HostWorkers? workers)
    {
        Blocks = blocks;
        HostOptions = new DecodeOptions { Workers = workers };
        (Device, Batch, Heads, KvHeads, HeadDim, Capacity) =
            (device, batch, heads, kvHeads, headDim, capacity);
        var accelerator = device.Accelerator;
        long rows = (long)batch * DecodeAttention.MaxQueryRows;
        Query = new FloatBuffer(accelerator, rows * heads * headDim);
        Output = new FloatBuffer(accelerator, rows * heads * headDim);
        long pack = (long)batch * kvHeads * AppendRows * headDim;
        if (accelerator is null)
        {
            HostKeys = new TStorage[pack];
            HostValues = new TStorage[pack];
        }
        else
        {
            DeviceKeys = accelerator.Allocate1D<TStorage>(pack);
            DeviceValues = accelerator.Allocate1D<TStorage>(pack);
        }
        Counts = new int[batch];
    }

    public ComputeDevice Device { get; }
    public int Batch { get; }
    public int Heads { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    public int Capacity { get; }
    public Blocks Blocks { get; }

    /// <summary>Host decode calls run on the model's workers.</summary>
    public DecodeOptions HostOptions { get; }

    /// <summary>Decode queries (batch, heads, rows, headDim), rows ≤ 16.</summary>
    public FloatBuffer Query { get; }

    /// <summary>Decode outputs, as <see cref="Query"/>.</summary>
    public FloatBuffer Output { get; }

    /// <summary>Keys and values of one append, (batch, kvHeads, rows, headDim).</summary>
    public TStorage[]? HostKeys { get; }
    public TStorage[]? HostValues { get; }
    public MemoryBuffer1D<TStorage, Stride1D.Dense>? DeviceKeys { get; }
    public MemoryBuffer1D<TStorage, Stride1D.Dense>? DeviceValues { get; }

    /// <summary>Rows each sequence takes from an append.</summary>
    public int[] Counts { get; }

    public void Dispose()
    {
        Query.Dispose();
        Output.Dispose();
        DeviceKeys?.Dispose();
        DeviceValues?.Dispose();
    }
}

/// <inheritdoc cref="AttentionLayer"/>
internal sealed class AttentionLayer<TStorage, TScore, TMask, TNorm> : AttentionLayer
    where TStorage : unmanaged
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate
    where TNorm : struct, INormalizer
{
    private readonly AttentionScratch<TStorage> _s;
    private readonly KvCache<TStorage> _cache;
    private readonly TScore _score;
    private readonly TMask _mask;
    private readonly TNorm _norm;

    public AttentionLayer(AttentionScratch<TStorage> scratch, TScore score, TMask mask,
        TNorm norm)
    {
        _s = scratch;
        (_score, _mask, _norm) = (score, mask, norm);
        _cache = KvCache<TStorage>.Contiguous(scratch.Device, scratch.Batch, scratch.KvHeads,
            scratch.Capacity, scratch.HeadDim, scratch.HeadDim);
    }

    public override int Length(int sequence) => _cache.Length(sequence);

    public override void Reset() => _cache.Clear();

    public override void Forward(ForwardCall call, Act q, Act k, Act v, Act output)
    {
        switch (call.Kind)
        {
            case CallKind.Prefill:
                Prefill(call, q, k, v, output);
                for (int r = 0; r < call.Rows; r += AttentionScratch<TStorage>.AppendRows)
                    AppendRows(call, k, v, r,
                        Math.Min(AttentionScratch<TStorage>.AppendRows, call.Rows - r));
                break;
            case CallKind.Chunk:
                AppendRows(call, k, v, 0, call.Rows);
                Decode(call, q, output);
                break;
            default:
                AppendStep(call.Rows, k, v);
                Decode(call, q, output);
                break;
        }
    }

    // Keys and values in (rows, kvHeads, dim) order, exact causal positions 0 .. rows − 1.
    private void Prefill(ForwardCall call, Act q, Act k, Act v, Act output)
    {
        int rows = call.Rows, d = _s.HeadDim;
        var shape = new AttentionShape(1, _s.Heads, _s.KvHeads, rows, rows, d, d);
        var options = new AttentionOptions
        {
            QueryPosition = 0,
            Layout = AttentionLayout.SequenceMajor(shape),
        };
        long qn = shape.QueryLength, kn = shape.KeyLength;
        if (_s.Device.IsHost)
            FlashAttention.Forward(_s.Device, shape, (ReadOnlySpan<float>)q.Span[..(int)qn],
                k.Span[..(int)kn], v.Span[..(int)kn], output.Span[..(int)qn], default, _score,
                _mask, _norm, options);
        else
            FlashAttention.Forward(_s.Device, shape, q.View.SubView(0, qn),
                k.View.SubView(0, kn), v.View.SubView(0, kn), output.View.SubView(0, qn),
                default, _score, _mask, _norm, options);
    }

    // Rows [first, first + count) of the call's one sequence into its cache.
    private void AppendRows(ForwardCall call, Act k, Act v, int first, int count)
    {
        int kvWidth = _s.KvHeads * _s.HeadDim;
        long slot = (long)call.Sequence * kvWidth * count;
        long length = (long)_s.Batch * kvWidth * count;
        Array.Clear(_s.Counts);
        _s.Counts[call.Sequence] = count;
        var keys = k.Slice((long)first * kvWidth, (long)count * kvWidth);
        var values = v.Slice((long)first * kvWidth, (long)count * kvWidth);
        if (_s.Device.IsHost)
        {
            Pack(keys.Span, _s.HostKeys.AsSpan((int)slot, count * kvWidth), count);
            Pack(values.Span, _s.HostValues.AsSpan((int)slot, count * kvWidth), count);
            _cache.Append(_s.HostKeys.AsSpan(0, (int)length),
                _s.HostValues.AsSpan(0, (int)length), count, _s.Counts);
            return;
        }
        var blocks = (IlgpuBlocks)_s.Blocks;
        var dk = _s.DeviceKeys!.View.AsContiguous().SubView(0, length);
        var dv = _s.DeviceValues!.View.AsContiguous().SubView(0, length);
        blocks.Pack(keys, dk.SubView(slot, count * kvWidth), count, _s.KvHeads, _s.HeadDim);
        blocks.Pack(values, dv.SubView(slot, count * kvWidth), count, _s.KvHeads, _s.HeadDim);
        _cache.Append(dk, dv, count, _s.Counts);
    }

    // One row for each of sequences 0 .. n − 1: (batch, kvHeads, 1, dim) is token-major.
    private void AppendStep(int n, Act k, Act v)
    {
        int kvWidth = _s.KvHeads * _s.HeadDim, length = _s.Batch * kvWidth;
        for (int b = 0; b < _s.Batch; b++)
            _s.Counts[b] = b < n ? 1 : 0;
        if (_s.Device.IsHost)
        {
            Pack(k.Span[..(n * kvWidth)], _s.HostKeys.AsSpan(0, n * kvWidth), 1);
            Pack(v.Span[..(n * kvWidth)], _s.HostValues.AsSpan(0, n * kvWidth), 1);
            _cache.Append(_s.HostKeys.AsSpan(0, length), _s.HostValues.AsSpan(0, length), 1,
                _s.Counts);
            return;
        }
        var blocks = (IlgpuBlocks)_s.Blocks;
        var dk = _s.DeviceKeys!.View.AsContiguous().SubView(0, length);
        var dv = _s.DeviceValues!.View.AsContiguous().SubView(0, length);
        blocks.Pack(k.Slice(0, (long)n * kvWidth), dk, 1, n * _s.KvHeads, _s.HeadDim);
        blocks.Pack(v.Slice(0, (long)n * kvWidth), dv, 1, n * _s.KvHeads, _s.HeadDim);
        _cache.Append(dk, dv, 1, _s.Counts);
    }

    // Decode over the cache for every sequence of the cache (those outside the call compute
    // rows nobody reads): queries and outputs (batch, heads, rows, dim).
    private void Decode(ForwardCall call, Act q, Act output)
    {
        int heads = _s.Heads, d = _s.HeadDim, width = heads * d;
        int rows = call.Kind == CallKind.Step ? 1 : call.Rows;
        long length = (long)_s.Batch * width * rows;
        Act query, result;
        if (call.Kind == CallKind.Step)
        {
            (query, result) = (q.Slice(0, length), output.Slice(0, length));
        }
        else
        {
            (query, result) = (_s.Query[0, length], _s.Output[0, length]);
            long slot = (long)call.Sequence * width * rows;
            _s.Blocks.ToHeadMajor(q, query.Slice(slot, (long)width * rows), rows, heads, d);
        }
        if (_s.Device.IsHost)
            DecodeAttention.Forward(_cache, heads, rows, (ReadOnlySpan<float>)query.Span,
                result.Span, default, _score, _mask, _norm, _s.HostOptions);
        else
            DecodeAttention.Forward(_cache, heads, rows, query.View, result.View, default,
                _score, _mask, _norm);
        if (call.Kind != CallKind.Step)
            _s.Blocks.FromHeadMajor(result.Slice((long)call.Sequence * width * rows,
                (long)width * rows), output, rows, heads, d);
    }

    // (rows, heads, dim) floats to (heads, rows, dim) storage elements.
    private void Pack(ReadOnlySpan<float> source, Span<TStorage> destination, int rows)
    {
        int d = _s.HeadDim, heads = source.Length / (rows * d);
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
                Narrow(source.Slice((r * heads + h) * d, d),
                    destination.Slice((h * rows + r) * d, d));
    }

    private static void Narrow(ReadOnlySpan<float> source, Span<TStorage> destination)
    {
        if (typeof(TStorage) == typeof(float))
            source.CopyTo(System.Runtime.InteropServices.MemoryMarshal
                .Cast<TStorage, float>(destination));
        else if (typeof(TStorage) == typeof(Half))
            ElementConvert.FromSingle(source, System.Runtime.InteropServices.MemoryMarshal
                .Cast<TStorage, Half>(destination));
        else
            ElementConvert.FromSingle(source, System.Runtime.InteropServices.MemoryMarshal
                .Cast<TStorage, BFloat16>(destination));
    }

    public override void Dispose() => _cache.Dispose();
}
