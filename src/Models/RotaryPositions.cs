namespace Managed.Models;

/// <summary>
/// cos and sin (rows, headDim / 2) of one RoPE for the positions of a forward call. The table
/// of positions [0, MaxLength) is made once (transformers' fp32 rounding); dynamic NTK
/// recomputes the frequencies when a call reaches past max_position_embeddings, for
/// L = its largest position + 1, as transformers' generate does (keys already cached keep
/// the rotation they had).
/// </summary>
internal sealed class RotaryPositions : IDisposable
{
    private readonly RopeParameters _rope;
    private readonly RopeTable _table;
    private readonly float[] _cos, _sin;           // (rows, half)
    private readonly FloatBuffer? _deviceCos, _deviceSin;
    private readonly FloatBuffer? _hostCos, _hostSin;

    public RotaryPositions(RopeParameters rope, int maxLength, int maxRows,
        ILGPU.Runtime.Accelerator? accelerator)
    {
        _rope = rope;
        _table = rope.CreateTable(maxLength);
        int half = rope.Dim / 2;
        if (accelerator is null)
        {
            _hostCos = new FloatBuffer(null, (long)maxRows * half);
            _hostSin = new FloatBuffer(null, (long)maxRows * half);
            _cos = _sin = [];
        }
        else
        {
            _cos = new float[maxRows * half];
            _sin = new float[maxRows * half];
            _deviceCos = new FloatBuffer(accelerator, (long)maxRows * half);
            _deviceSin = new FloatBuffer(accelerator, (long)maxRows * half);
        }
    }

    public RopeParameters Rope => _rope;

    /// <summary>cos and sin of <paramref name="positions"/>[0 .. rows), ready for
    /// <see cref="Blocks.Rope"/>.</summary>
    public (Act Cos, Act Sin) For(ReadOnlySpan<int> positions, int rows, Blocks blocks)
    {
        int half = _rope.Dim / 2;
        var cos = _hostCos is null ? _cos.AsSpan(0, rows * half) : _hostCos.Span(0, rows * half);
        var sin = _hostSin is null ? _sin.AsSpan(0, rows * half) : _hostSin.Span(0, rows * half);
        int longest = 0;
        for (int r = 0; r < rows; r++)
            longest = Math.Max(longest, positions[r] + 1);
        if (_rope.Type == RopeType.Dynamic && longest > _rope.MaxPositionEmbeddings)
            Dynamic(positions, rows, longest, cos, sin);
        else
            for (int r = 0; r < rows; r++)
            {
                _table.Cos(positions[r]).CopyTo(cos.Slice(r * half, half));
                _table.Sin(positions[r]).CopyTo(sin.Slice(r * half, half));
            }
        if (_deviceCos is null)
            return (_hostCos![0, rows * half], _hostSin![0, rows * half]);
        blocks.Upload(cos, _deviceCos[0, rows * half]);
        blocks.Upload(sin, _deviceSin![0, rows * half]);
        return (_deviceCos[0, rows * half], _deviceSin[0, rows * half]);
    }

    // RopePrecision.HuggingFace's rounding, for frequencies of sequence length L.
    private void Dynamic(ReadOnlySpan<int> positions, int rows, int length, Span<float> cos,
        Span<float> sin)
    {
        var inv = _rope.InverseFrequencies(length);
        int half = inv.Length;
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < half; i++)
            {
                float angle = (float)inv[i] * (float)positions[r];
                cos[r * half + i] = (float)Math.Cos(angle);
                sin[r * half + i] = (float)Math.Sin(angle);
            }
    }

    public void Dispose()
    {
        _deviceCos?.Dispose();
        _deviceSin?.Dispose();
    }
}
