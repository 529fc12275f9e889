using Managed.Kernels.Matmul;
using Managed.Kernels.Decode;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Tensors;

namespace Managed.Models;

/// <summary>
/// A decoder-only transformer (Llama, Mistral, Qwen2, GPT-2) loaded from a Hugging Face
/// directory, on the host or an ILGPU device, with a KV cache per layer for
/// <see cref="ICausalModel.MaxBatch"/> sequences of up to <see cref="ICausalModel.MaxLength"/>
/// tokens. Weights keep their stored type. A prompt appended to an empty sequence runs as
/// one prefill (FlashAttention); later tokens run through the decode kernel over the cache.
/// Not thread-safe.
/// </summary>
public sealed class TransformerModel : ICausalModel
{
    private readonly ModelWeights _weights;
    private readonly Blocks _blocks;
    private readonly RunState _state;
    private readonly IDisposable _scratch;
    private readonly AttentionLayer[] _attention;
    private readonly RotaryPositions[] _ropes;             // distinct RoPEs
    private readonly int[] _ropeOfLayer;                   // index into _ropes, -1: none
    private readonly (Act Cos, Act Sin)[] _ropeRows;       // per distinct RoPE, this call
    private readonly (FloatBuffer W, FloatBuffer B)?[] _gates; // per layer: (heads, hidden)
    private readonly int[] _lengths;
    private readonly HostWorkers? _workers;
    private bool _disposed;

    private TransformerModel(ModelConfig config, ComputeDevice device, ModelOptions options,
        SafetensorsCheckpoint checkpoint)
    {
        Config = config;
        Device = device;
        Options = options;
        MaxBatch = options.MaxBatch;
        MaxLength = options.MaxLength!.Value;
        // Host: a step is ~100 calls of microseconds each, too short for the thread pool.
        _workers = device.IsHost
            ? new HostWorkers(options.HostThreads ?? Environment.ProcessorCount) : null;
        try
        {
            _weights = ModelWeights.Load(config, checkpoint, device,
                new LinearOptions { Workers = _workers, Precision = options.LinearPrecision });
            var accelerator = device.Accelerator;
            _blocks = accelerator is null ? new HostBlocks() : new IlgpuBlocks(device);
            int rows = Math.Max(MaxLength, MaxBatch);
            _state = new RunState(config, rows, MaxBatch, accelerator);
            (_scratch, _attention) = options.CacheType switch
            {
                DataType.Float16 => Layers<System.Half>(),
                DataType.BFloat16 => Layers<BFloat16>(),
                _ => Layers<float>(),
            };
            var distinct = config.Layers.Select(l => l.Rope).OfType<RopeParameters>().Distinct()
                .ToList();
            _ropes = distinct.Select(r => new RotaryPositions(r, MaxLength, rows, accelerator))
                .ToArray();
            _ropeOfLayer = config.Layers.Select(l => l.Rope is null ? -1 : distinct.IndexOf(l.Rope))
                .ToArray();
            _ropeRows = new (Act, Act)[_ropes.Length];
            _gates = config.Layers.Select((_, l) => options.OutputGates?[l] is { } g
                ? ((FloatBuffer, FloatBuffer)?)(FloatBuffer.From(accelerator, [.. g.Weight]),
                    FloatBuffer.From(accelerator, [.. g.Bias]))
                : null).ToArray();
            _lengths = new int[MaxBatch];
        }
        catch
        {
            _weights?.Dispose();
            _workers?.Dispose();
            throw;
        }
    }

    private (IDisposable, AttentionLayer[]) Layers<TStorage>() where TStorage : unmanaged
    {
        var c = Config;
        var scratch = new AttentionScratch<TStorage>(Device, _blocks, MaxBatch, c.HeadCount,
            c.KvHeadCount, c.HeadDim, MaxLength, _workers);
        var layers = c.Layers.Select(l =>
            AttentionLayer.Bind(scratch, Options.Attention, l.SlidingWindow)).ToArray();
        return (scratch, layers);
    }

    /// <summary>
    /// Loads the model in <paramref name="directory"/> (config.json and model.safetensors or
    /// a sharded index) onto <paramref name="device"/>. On the host the weights stay in the
    /// checkpoint's memory mapping (GPT-2's Conv1D weights are transposed once into memory);
    /// on an ILGPU device they are copied there.
    /// </summary>
    /// <exception cref="FileNotFoundException">No config or checkpoint there.</exception>
    /// <exception cref="ModelFormatException">The config or a tensor is not usable (the
    /// message names the file and the tensor).</exception>
    /// <exception cref="ArgumentException">An option is not valid for the model.</exception>
    public static TransformerModel Load(string directory, ComputeDevice device,
        ModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(device);
        var config = ModelConfig.Load(directory);
        var resolved = (options ?? new ModelOptions()).Resolve(config);
        // The weights are copied out (host memory or the device): the mapping closes here.
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        return new TransformerModel(config, device, resolved, checkpoint);
    }

    /// <inheritdoc/>
    public ModelConfig Config { get; }

    /// <inheritdoc/>
    public ComputeDevice Device { get; }

    /// <summary>The options the model runs with (MaxLength resolved).</summary>
    public ModelOptions Options { get; }

    /// <inheritdoc/>
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc/>
    public int MaxBatch { get; }

    /// <inheritdoc/>
    public int MaxLength { get; }

    /// <summary>Bytes of weight matrices one decode step reads.</summary>
    public long WeightBytes => _weights.MatrixBytes;

    /// <inheritdoc/>
    public int Length(int sequence)
    {
        CheckSequence(sequence);
        return _lengths[sequence];
    }

    /// <inheritdoc/>
    public void Reset()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (var layer in _attention)
            layer.Reset();
        Array.Clear(_lengths);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">No tokens, a token outside the vocabulary, the
    /// sequence would pass MaxLength, or logits is neither [tokens, vocab] nor [vocab].
    /// </exception>
    public void Append(int sequence, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        CheckSequence(sequence);
        CheckTokens(tokens);
        int start = _lengths[sequence], vocab = VocabSize, n = tokens.Length;
        if (start + n > MaxLength)
            throw new ArgumentException($"Sequence {sequence} holds {start} tokens; {n} more "
                + $"pass MaxLength {MaxLength}.", nameof(tokens));
        bool every = logits.Length == (long)n * vocab;
        if (!every && logits.Length != vocab)
            throw new ArgumentException($"logits has {logits.Length} elements; expected "
                + $"tokens × vocab = {(long)n * vocab} or vocab = {vocab}.", nameof(logits));
        // An empty sequence prefills at once; else chunks the decode kernel takes.
        int chunk = start == 0 ? n : DecodeAttention.MaxQueryRows;
        for (int first = 0; first < n; first += chunk)
        {
            int rows = Math.Min(chunk, n - first);
            for (int r = 0; r < rows; r++)
            {
                _state.Tokens.Host[r] = tokens[first + r];
                _state.Positions.Host[r] = start + first + r;
            }
            var kind = start == 0 ? CallKind.Prefill : CallKind.Chunk;
            Forward(new ForwardCall(kind, sequence, rows));
            _lengths[sequence] += rows;
            if (every)
                Logits(0, rows, logits.Slice(first * vocab, rows * vocab));
            else if (first + rows == n)
                Logits(rows - 1, 1, logits);
        }
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">More tokens than MaxBatch, a token outside the
    /// vocabulary, a sequence at MaxLength, or logits is not [tokens, vocab].</exception>
    public void Step(ReadOnlySpan<int> tokens, Span<float> logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckTokens(tokens);
        int n = tokens.Length;
        if (n > MaxBatch)
            throw new ArgumentException($"{n} tokens for MaxBatch {MaxBatch} sequences.",
                nameof(tokens));
        if (logits.Length != (long)n * VocabSize)
            throw new ArgumentException($"logits has {logits.Length} elements; expected "
                + $"{n} × vocab {VocabSize}.", nameof(logits));
        for (int b = 0; b < n; b++)
        {
            if (_lengths[b] >= MaxLength)
                throw new ArgumentException($"Sequence {b} is full ({MaxLength} tokens).",
                    nameof(tokens));
            _state.Tokens.Host[b] = tokens[b];
            _state.Positions.Host[b] = _lengths[b];
        }
        Forward(new ForwardCall(CallKind.Step, 0, n));
        for (int b = 0; b < n; b++)
            _lengths[b]++;
        Logits(0, n, logits);
    }

    // The forward pass over the call's rows (tokens and positions in the run state), leaving
    // the final-normed hidden states in Xb. Reads top to bottom as llama2.c's forward().
    private void Forward(ForwardCall call)
    {
        var c = Config;
        var w = _weights;
        var s = _state;
        var blocks = _blocks;
        int m = call.Rows, hidden = c.HiddenSize, d = c.HeadDim;
        long residual = (long)m * hidden, inner = (long)m * c.IntermediateSize;
        blocks.Bind();

        // x = token embedding (+ learned position embedding: GPT-2)
        w.Embedding.Gather(s.Tokens, m, s.X.All, blocks);
        if (w.Positions is { } wpe)
        {
            wpe.Gather(s.Positions, m, s.Xb.All, blocks);
            blocks.Add(s.X.All, s.Xb.All, residual);
        }
        for (int i = 0; i < _ropes.Length; i++)
            _ropeRows[i] = _ropes[i].For(s.Positions.Host, m, blocks);

        for (int l = 0; l < c.LayerCount; l++)
        {
            var lw = w.Layers[l];

            // attention: x += o_proj(attention(rope(q), rope(k), v)), q k v of norm(x);
            // gated attention scales each head by σ(w_h · norm(x) + b_h) before o_proj
            Norm(lw.AttentionNorm, m);
            lw.Query.Forward(s.Xb.All, s.Q.All, m);
            lw.Key.Forward(s.Xb.All, s.K.All, m);
            lw.Value.Forward(s.Xb.All, s.V.All, m);
            if (_ropeOfLayer[l] >= 0)
            {
                var (cos, sin) = _ropeRows[_ropeOfLayer[l]];
                blocks.Rope(s.Q.All, m, c.HeadCount, d, cos, sin);
                blocks.Rope(s.K.All, m, c.KvHeadCount, d, cos, sin);
            }
            _attention[l].Forward(call, s.Q.All, s.K.All, s.V.All, s.Attention.All);
            if (_gates[l] is { } g)
                blocks.OutputGate(s.Xb.All, s.Attention.All, g.W.All, g.B.All, m, hidden,
                    c.HeadCount, d);
            lw.Output.Forward(s.Attention.All, s.Xb.All, m);
            blocks.Add(s.X.All, s.Xb.All, residual);

            // MLP: x += down(act(gate(h)) · up(h)), h = norm(x); GPT-2: down(gelu(up(h)))
            Norm(lw.MlpNorm, m);
            lw.Up.Forward(s.Xb.All, s.Up.All, m);
            if (lw.Gate is { } gate)
            {
                gate.Forward(s.Xb.All, s.Gate.All, m);
                blocks.GatedMul(s.Gate.All, s.Up.All, inner, c.Activation);
                lw.Down.Forward(s.Gate.All, s.Xb.All, m);
            }
            else
            {
                blocks.Activate(s.Up.All, inner, c.Activation);
                lw.Down.Forward(s.Up.All, s.Xb.All, m);
            }
            blocks.Add(s.X.All, s.Xb.All, residual);
        }

        // final norm; the LM head runs in Logits on the rows wanted
        Norm(w.FinalNorm, m);
    }

    // Xb = norm(X) over m rows.
    private void Norm(NormWeights norm, int m)
    {
        var c = Config;
        float eps = (float)c.NormEpsilon;
        if (c.Norm == NormKind.RmsNorm)
            _blocks.RmsNorm(_state.X.All, _state.Xb.All, norm.Weight.All, m, c.HiddenSize, eps);
        else
            _blocks.LayerNorm(_state.X.All, _state.Xb.All, norm.Weight.All, norm.Bias!.All, m,
                c.HiddenSize, eps);
    }

    // logits (count, vocab) = lm_head(Xb rows [first, first + count)), LogitRows at a time.
    private void Logits(int first, int count, Span<float> logits)
    {
        int hidden = Config.HiddenSize, vocab = VocabSize;
        int step = (int)(_state.Logits.Length / vocab);
        for (int r = 0; r < count; r += step)
        {
            int rows = Math.Min(step, count - r);
            var x = _state.Xb[(long)(first + r) * hidden, (long)rows * hidden];
            _weights.LmHead.Linear(x, _state.Logits.All, rows, null);
            _blocks.Download(_state.Logits[0, (long)rows * vocab],
                logits.Slice(r * vocab, rows * vocab));
        }
    }

    private void CheckSequence(int sequence)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)sequence >= (uint)MaxBatch)
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence,
                $"Sequences are 0 to {MaxBatch - 1}.");
    }

    private void CheckTokens(ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty)
            throw new ArgumentException("No tokens.", nameof(tokens));
        foreach (int t in tokens)
            if ((uint)t >= (uint)VocabSize)
                throw new ArgumentException($"Token {t} is outside the vocabulary "
                    + $"[0, {VocabSize}).", nameof(tokens));
    }

    /// <summary>Frees the caches, buffers and weights (and unmaps the checkpoint).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var layer in _attention)
            layer.Dispose();
        foreach (var rope in _ropes)
            rope.Dispose();
        _scratch.Dispose();
        _state.Dispose();
        foreach (var gate in _gates)
        {
            gate?.W.Dispose();
            gate?.B.Dispose();
        }
        _weights.Dispose();
        _workers?.Dispose();
    }
}
