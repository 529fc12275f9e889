using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Half = System.Half;

namespace Managed.Bench.Onnx;

/// <summary>
/// One ONNX Runtime CPU session of <see cref="GqaDecodeModel"/> over one cache, every input
/// and output bound to pinned arrays of its own (no copies around the timed call), fp32
/// (<typeparamref name="T"/> = float) or fp16 (<see cref="Half"/>, ORT's MLFloat16). The S new
/// rows' K/V are the cache's last S rows, so the cache is the same before and after a call.
/// <para>Shared: past_key and present_key are one buffer of capacity rows (likewise the
/// values), as a user running decode step by step binds them: ORT sees the same pointer and
/// writes only the S new rows at position total - S, reading the past where it is. Copying:
/// past (total - S rows) and present (total rows) are apart, so every call clears the present
/// and copies the whole past into it.</para>
/// <para>Bytes ORT 1.31.1 touches per call (from its CPU kernel source, the kernel symbols of
/// the shipped libonnxruntime.so and --decode timings; PoisonPresent shows the writes).
/// Shared, no copy: the S new K/V rows are written at total - S, the past is read in place.
/// But K and V are read once per query head, not once per KV head: at 65536 keys on 2 threads,
/// H/KvH 8/8, 32/8 and 32/2 took 9.8, 33 and 32 ms (fp32, S = 1), so time follows query heads
/// x keys, not cache bytes (likewise at S = 4 and in fp16). S = 1, and fp16 at any S, take
/// GQA's plain path: per query head a GEMM into a (B, H, S, T) float score buffer, a softmax
/// over it, a GEMM with V; fp16 K/V rows are widened to fp32 scratch first. S &gt; 1 in fp32
/// takes the tiled flash kernel of MLAS (ApplyAttentionFlash): no score buffer. Copying adds
/// a clear of the present (K+V bytes written) and a copy of the past into it (K+V bytes read
/// and written) every call.</para>
/// </summary>
public sealed class OrtDecode<T> : IDisposable where T : unmanaged
{
    private readonly InferenceSession _session;
    private readonly RunOptions _run = new();
    private readonly OrtValue[] _inputs, _outputs;
    private readonly T[] _output, _presentKeys, _presentValues;
    private readonly int _batch, _heads, _kvHeads, _rows, _keys, _dim;

    /// <summary>Whether past and present share one buffer.</summary>
    public bool Shared { get; }

    /// <summary>Creates the session. keys and values: (batch, kvHeads, keysCount, dim), of
    /// which the last <paramref name="rows"/> rows of each head are the new tokens; query:
    /// (batch, heads, rows, dim).</summary>
    public OrtDecode(int batch, int heads, int kvHeads, int rows, int keysCount, int dim,
        T[] keys, T[] values, T[] query, bool shared, int threads)
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(Half))
            throw new ArgumentException($"ORT decode runs float or Half, not {typeof(T).Name}.");
        (_batch, _heads, _kvHeads, _rows, _keys, _dim, Shared) =
            (batch, heads, kvHeads, rows, keysCount, dim, shared);
        int past = shared ? keysCount : keysCount - rows;
        byte[] model = GqaDecodeModel.Build(batch, heads, kvHeads, rows, past, keysCount, dim,
            typeof(T) == typeof(Half));
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            // The present shape merge warning of past and present apart (GqaDecodeModel.Build).
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        _session = new InferenceSession(model, options);

        T[] q = Pinned<T>(query.Length), newK = NewRows(keys), newV = NewRows(values);
        ToBsnh(query, q, batch, heads, rows, dim);
        _output = Pinned<T>(query.Length);
        _presentKeys = Pinned<T>(keys.Length);
        _presentValues = Pinned<T>(values.Length);
        T[] pastKeys = _presentKeys, pastValues = _presentValues;
        keys.CopyTo(_presentKeys, 0);
        values.CopyTo(_presentValues, 0);
        if (!shared)
        {
            pastKeys = PastRows(keys, past);
            pastValues = PastRows(values, past);
        }
        int[] seqlens = Pinned<int>(batch), total = Pinned<int>(1);
        Array.Fill(seqlens, keysCount - 1); // GQA takes total length - 1 per sequence
        total[0] = keysCount;
        long[] qShape = [batch, rows, (long)heads * dim], kvShape = [batch, rows, kvHeads * dim];
        long[] pastShape = [batch, kvHeads, past, dim];
        long[] presentShape = [batch, kvHeads, keysCount, dim];
        _inputs =
        [
            Bind(q, qShape), Bind(newK, kvShape), Bind(newV, kvShape),
            Bind(pastKeys, pastShape), Bind(pastValues, pastShape),
            Bind(seqlens, [batch]), Bind(total, []),
        ];
        _outputs =
            [Bind(_output, qShape), Bind(_presentKeys, presentShape),
                Bind(_presentValues, presentShape)];
    }

    /// <summary>Runs the model once.</summary>
    public void Run() =>
        _session.Run(_run, GqaDecodeModel.Inputs, _inputs, GqaDecodeModel.Outputs, _outputs);

    /// <summary>The last output as float (batch, heads, rows, dim).</summary>
    public float[] OutputBnsh()
    {
        var o = new float[_output.Length];
        for (int b = 0; b < _batch; b++)
            for (int h = 0; h < _heads; h++)
                for (int r = 0; r < _rows; r++)
                    for (int i = 0; i < _dim; i++)
                        o[(((long)b * _heads + h) * _rows + r) * _dim + i] =
                            Widen(_output[(((long)b * _rows + r) * _heads + h) * _dim + i]);
        return o;
    }

    /// <summary>Overwrites with NaN the present rows ORT must write on the next call: the S new
    /// rows (shared) or all of them (copying), so <see cref="PresentEquals"/> after a call shows
    /// what ORT wrote.</summary>
    public void PoisonPresent()
    {
        T nan = typeof(T) == typeof(float) ? (T)(object)float.NaN : (T)(object)Half.NaN;
        int from = Shared ? _keys - _rows : 0;
        for (int h = 0; h < _batch * _kvHeads; h++)
        {
            long start = ((long)h * _keys + from) * _dim, length = (long)(_keys - from) * _dim;
            _presentKeys.AsSpan((int)start, (int)length).Fill(nan);
            _presentValues.AsSpan((int)start, (int)length).Fill(nan);
        }
    }

    /// <summary>Whether present_key / present_value now hold exactly the whole cache.</summary>
    public bool PresentEquals(T[] keys, T[] values) =>
        MemoryMarshal.AsBytes(_presentKeys.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(
            keys.AsSpan()))
        && MemoryMarshal.AsBytes(_presentValues.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(
            values.AsSpan()));

    /// <summary>ORT's version string.</summary>
    public static string Version => OrtEnv.Instance().GetVersionString();

    /// <summary>Frees the bound values, then the session.</summary>
    public void Dispose()
    {
        foreach (var v in _inputs) v.Dispose();
        foreach (var v in _outputs) v.Dispose();
        _run.Dispose();
        _session.Dispose();
    }

    // The S new rows of every (b, kv head), as GQA's key/value input (batch, rows, kvHeads*dim).
    private T[] NewRows(T[] cache)
    {
        int kvHeads = _kvHeads;
        var rows = Pinned<T>(_batch * _rows * kvHeads * _dim);
        for (int b = 0; b < _batch; b++)
            for (int h = 0; h < kvHeads; h++)
                for (int r = 0; r < _rows; r++)
                    cache.AsSpan((int)((((long)b * kvHeads + h) * _keys + _keys - _rows + r)
                        * _dim), _dim)
                        .CopyTo(rows.AsSpan(((b * _rows + r) * kvHeads + h) * _dim, _dim));
        return rows;
    }

    // The first `past` rows of every (b, kv head): a past buffer apart from the present.
    private T[] PastRows(T[] cache, int past)
    {
        var rows = Pinned<T>(_batch * _kvHeads * past * _dim);
        for (int bh = 0; bh < _batch * _kvHeads; bh++)
            cache.AsSpan((int)((long)bh * _keys * _dim), past * _dim)
                .CopyTo(rows.AsSpan((int)((long)bh * past * _dim), past * _dim));
        return rows;
    }

    private static void ToBsnh(T[] bnsh, T[] bsnh, int batch, int heads, int rows, int dim)
    {
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int r = 0; r < rows; r++)
                    bnsh.AsSpan(((b * heads + h) * rows + r) * dim, dim)
                        .CopyTo(bsnh.AsSpan(((b * rows + r) * heads + h) * dim, dim));
    }

    private static float Widen(T x) =>
        typeof(T) == typeof(float) ? (float)(object)x : (float)(Half)(object)x;

    // Pinned (pinned object heap): the OrtValues keep raw pointers into these arrays.
    private static TArray[] Pinned<TArray>(int length) where TArray : unmanaged =>
        GC.AllocateArray<TArray>(length, pinned: true);

    private static unsafe OrtValue Bind<TArray>(TArray[] data, long[] shape)
        where TArray : unmanaged
    {
        var type = typeof(TArray) == typeof(float) ? TensorElementType.Float
            : typeof(TArray) == typeof(Half) ? TensorElementType.Float16 : TensorElementType.Int32;
        var pointer = (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data));
        return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, type, shape,
            pointer, (long)data.Length * sizeof(TArray));
    }
}
