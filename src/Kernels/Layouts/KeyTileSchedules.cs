using System.Runtime.CompilerServices;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Layouts;

/// <summary>
/// The key tiles one query tile visits, in order. The kernels iterate a schedule instead of
/// scanning the tiles of the mask's key range themselves: step s of [0, Steps) visits tile
/// TileAt(s); a tile outside the mask's range [first, end) is skipped, and the mask still
/// classifies each visited tile Empty, Partial or Full. Tiles are the kernel's key tiles
/// (<see cref="Attention.FlashAttention.KeyTileOf"/>). A schedule that visits a subset of the
/// keys gives attention over that subset, with its log-sum-exp: the parts of a split merge with
/// <see cref="Attention.AttentionMerge"/>. Implementations are readonly structs (kernel
/// arguments); members must not throw.
/// </summary>
public interface IKeyTileSchedule
{
    /// <summary>Number of steps for a query tile of (batch, head) whose mask reaches the key
    /// tiles [first, end).</summary>
    int Steps(int batch, int head, int first, int end);

    /// <summary>The key tile of step <paramref name="step"/> (0 &lt;= step &lt; Steps).</summary>
    int TileAt(int batch, int head, int first, int end, int step);
}

/// <summary>Every tile of the mask's range, in order: what the kernels did before schedules.
/// The default.</summary>
public readonly struct KeyRangeSchedule : IKeyTileSchedule
{
    /// <summary>end - first</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Steps(int batch, int head, int first, int end) => end - first;

    /// <summary>first + step</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int TileAt(int batch, int head, int first, int end, int step) => first + step;
}

/// <summary>
/// Part <see cref="Part"/> of <see cref="Parts"/> contiguous parts of each query tile's key
/// tiles (Flash-Decoding's split of the keys; the first parts are one tile longer when the
/// count does not divide). Each part gives attention over its keys and their log-sum-exp; the
/// parts merged give the whole. A ring step on several devices is a part too:
/// <see cref="RingStep"/>.
/// </summary>
public readonly struct KeySplitSchedule : IKeyTileSchedule, IValidated
{
    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">parts is not positive, or part is not in
    /// [0, parts).</exception>
    public KeySplitSchedule(int part, int parts)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(parts);
        if ((uint)part >= (uint)parts)
            throw new ArgumentOutOfRangeException(nameof(part), part,
                $"The part must be in [0, {parts}).");
        Part = part;
        Parts = parts;
    }

    /// <summary>The ring schedule of several devices: at step <paramref name="step"/>, device
    /// <paramref name="rank"/> of <paramref name="devices"/> visits part (rank + step) mod
    /// devices, so after <paramref name="devices"/> steps every device has seen every part.
    /// </summary>
    public static KeySplitSchedule RingStep(int rank, int step, int devices)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(devices);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        return new((int)(((long)rank + step) % devices), devices);
    }

    /// <summary>The part visited.</summary>
    public int Part { get; }

    /// <summary>The number of parts (a default instance has 0: rejected).</summary>
    public int Parts { get; }

    /// <inheritdoc/>
    public string? ParameterError() => Parts > 0 ? null
        : "KeySplitSchedule has no parts (a default instance): build it with its constructor.";

    /// <summary>The tiles of part Part: [first + start, first + start + length).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Steps(int batch, int head, int first, int end)
    {
        int count = end - first, size = count / Parts, extra = count % Parts;
        return size + (Part < extra ? 1 : 0);
    }

    /// <summary>first + the part's start + step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int TileAt(int batch, int head, int first, int end, int step)
    {
        int count = end - first, size = count / Parts, extra = count % Parts;
        return first + Part * size + Math.Min(Part, extra) + step;
    }
}

/// <summary>
/// A list of key tiles per (batch, head), in the order given (top-k routing, a block list):
/// <see cref="Stride"/> entries per (batch, head) in a table of (batch, heads, stride), a
/// negative entry ending the list early. Listed tiles outside a query tile's mask range are
/// skipped; a tile listed twice is visited twice (and counted twice).
/// </summary>
public readonly struct KeyBlockListSchedule<TBlocks> : IKeyTileSchedule, IValidated,
    IShapeDependent
    where TBlocks : struct, ITable<int>
{
    private readonly TBlocks _blocks;

    /// <summary>The lists <paramref name="blocks"/>: (batch, heads, stride) tile indices.
    /// </summary>
    public KeyBlockListSchedule(TBlocks blocks, int heads, int stride)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(stride);
        _blocks = blocks;
        Heads = heads;
        Stride = stride;
    }

    /// <summary>Heads per batch row of the table.</summary>
    public int Heads { get; }

    /// <summary>Entries per (batch, head).</summary>
    public int Stride { get; }

    /// <inheritdoc/>
    public string? ParameterError() => Stride > 0 ? null
        : "KeyBlockListSchedule has no table (a default instance): build it with its constructor.";

    /// <summary>The table must hold (batch, heads, stride) entries for the call's shape.
    /// </summary>
    public void Validate(Attention.AttentionShape shape)
    {
        if (Heads != shape.Heads)
            throw new ArgumentException(
                $"KeyBlockListSchedule was made for {Heads} heads; the call has {shape.Heads}.",
                "schedule");
        long need = (long)shape.Batch * Heads * Stride;
        if (_blocks.Length < need)
            throw new ArgumentException(
                $"KeyBlockListSchedule's table has {_blocks.Length} entries; (batch {shape.Batch}"
                + $", heads {Heads}, stride {Stride}) needs {need}.", "schedule");
    }

    /// <summary>The list's length: entries up to the first negative one.</summary>
    public int Steps(int batch, int head, int first, int end)
    {
        int row = (batch * Heads + head) * Stride, n = 0;
        while (n < Stride && _blocks[row + n] >= 0) n++;
        return n;
    }

    /// <summary>Entry <paramref name="step"/> of the (batch, head) list.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int TileAt(int batch, int head, int first, int end, int step) =>
        _blocks[(batch * Heads + head) * Stride + step];
}
