namespace Managed.Models;

/// <summary>
/// cos and sin of RoPE angles for positions [0, <see cref="Positions"/>), (positions, dim / 2)
/// row-major: transformers' cos and sin of width dim are this half repeated twice
/// (<c>cat(freqs, freqs)</c>), so column i serves dims i and i + dim/2. Already multiplied by
/// the attention scaling. Made by <see cref="RopeParameters.CreateTable"/>.
/// </summary>
public sealed class RopeTable
{
    private readonly float[] _cos;
    private readonly float[] _sin;

    /// <summary>A table over the given arrays, (positions, dim / 2) each; not copied.</summary>
    /// <exception cref="ArgumentException">dim is odd or the lengths do not match.</exception>
    public RopeTable(int dim, int positions, float[] cos, float[] sin)
    {
        ArgumentNullException.ThrowIfNull(cos);
        ArgumentNullException.ThrowIfNull(sin);
        if (dim <= 0 || dim % 2 != 0)
            throw new ArgumentException($"RoPE dim must be even and positive; got {dim}.",
                nameof(dim));
        ArgumentOutOfRangeException.ThrowIfNegative(positions);
        long length = (long)positions * (dim / 2);
        if (cos.Length != length || sin.Length != length)
            throw new ArgumentException(
                $"cos and sin must hold positions × dim/2 = {length} values; got "
                + $"{cos.Length} and {sin.Length}.", nameof(cos));
        Dim = dim;
        Positions = positions;
        _cos = cos;
        _sin = sin;
    }

    /// <summary>The rotated dims d.</summary>
    public int Dim { get; }

    /// <summary>Number of positions in the table.</summary>
    public int Positions { get; }

    /// <summary>cos(angle(position, i)) × scaling, i in [0, d/2).</summary>
    public ReadOnlySpan<float> Cos(int position) => _cos.AsSpan(Row(position), Dim / 2);

    /// <summary>sin(angle(position, i)) × scaling, i in [0, d/2).</summary>
    public ReadOnlySpan<float> Sin(int position) => _sin.AsSpan(Row(position), Dim / 2);

    /// <summary>Rotates every head of <paramref name="row"/> (heads, d) in place for
    /// <paramref name="position"/>: <see cref="RotateHalf"/>.</summary>
    /// <exception cref="ArgumentException">The row length is not a multiple of d.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The position is outside the table.
    /// </exception>
    public void Apply(Span<float> row, int position) =>
        RotateHalf(row, Dim, Cos(position), Sin(position));

    /// <summary>transformers' Llama rotation, x·cos + rotate_half(x)·sin with rotate_half(x) =
    /// cat(−x[d/2:], x[:d/2]), on each d-wide head of <paramref name="row"/> (heads, d), in
    /// place: for i &lt; d/2, x'[i] = x[i]·c[i] − x[i + d/2]·s[i] and
    /// x'[i + d/2] = x[i + d/2]·c[i] + x[i]·s[i], each product rounded to fp32 before the sum as
    /// in PyTorch.</summary>
    /// <exception cref="ArgumentException">d is odd, the row is not a multiple of d, or cos
    /// and sin are not d/2 long.</exception>
    public static void RotateHalf(Span<float> row, int dim, ReadOnlySpan<float> cos,
        ReadOnlySpan<float> sin)
    {
        if (dim <= 0 || dim % 2 != 0 || row.Length % dim != 0)
            throw new ArgumentException(
                $"The row ({row.Length}) must be whole heads of an even dim ({dim}).",
                nameof(row));
        int half = dim / 2;
        if (cos.Length != half || sin.Length != half)
            throw new ArgumentException(
                $"cos and sin must be dim/2 = {half} long; got {cos.Length} and {sin.Length}.",
                nameof(cos));
        for (int head = 0; head < row.Length; head += dim)
        {
            var x = row.Slice(head, dim);
            for (int i = 0; i < half; i++)
            {
                float a = x[i], b = x[i + half];
                float ac = a * cos[i], bs = b * sin[i], bc = b * cos[i], asn = a * sin[i];
                x[i] = ac - bs;
                x[i + half] = bc + asn;
            }
        }
    }

    private int Row(int position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(position, Positions);
        return position * (Dim / 2);
    }
}
