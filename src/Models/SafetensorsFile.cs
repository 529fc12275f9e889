using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;

namespace Managed.Models;

/// <summary>
/// A read-only, memory-mapped <c>.safetensors</c> file: an 8-byte little-endian header length
/// N, N bytes of JSON (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
/// "__metadata__": {string: string}}</c>), then the data, offsets relative to byte 8 + N.
/// <see cref="Open"/> checks the whole header before anything is read: the header length
/// against the file, the JSON, every dtype and dim, that each tensor's byte size equals its
/// element count × dtype size, and that the tensors tile the data exactly (no overlap, no gap,
/// nothing past the end: a truncated file fails here; nothing after the last tensor either).
/// Every error is a <see cref="ModelFormatException"/> naming the file and the tensor.
/// Tensors (<see cref="SafetensorsTensor"/>) read the mapping without copies; disposing the file
/// unmaps it, after which every tensor read throws <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>The largest header accepted, as the reference implementation (100 MB).</summary>
    public const long MaxHeaderLength = 100_000_000;

    private readonly Dictionary<string, SafetensorsTensor> _byName =
        new(StringComparer.Ordinal);
    private SafetensorsTensor[] _tensors = [];
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;
    private int _disposed;

    private SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view,
        byte* basePointer, long headerLength)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePointer;
        DataStart = 8 + headerLength;
        Metadata = new Dictionary<string, string>(StringComparer.Ordinal);
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path { get; }

    /// <summary>8 + header length: the file offset of data byte 0.</summary>
    public long DataStart { get; }

    /// <summary>The <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; private set; }

    /// <summary>The tensors in header order.</summary>
    public IReadOnlyList<SafetensorsTensor> Tensors => _tensors;

    /// <summary>True once <see cref="Dispose"/> has run.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    internal byte* DataPointer => _base + DataStart;

    /// <summary>True when the file has a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor called <paramref name="name"/>, if any.</summary>
    public bool TryGetTensor(string name, out SafetensorsTensor tensor) =>
        _byName.TryGetValue(name, out tensor!);

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="ModelFormatException">The file has no such tensor.</exception>
    public SafetensorsTensor this[string name] => _byName.TryGetValue(name, out var t)
        ? t : throw new ModelFormatException(Path, name, "no such tensor in the file.");

    /// <summary>Maps <paramref name="path"/> and checks its header (see the class summary).
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ModelFormatException">The file is not a valid safetensors file.
    /// </exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = stream.Length;
        if (fileLength < 8)
        {
            stream.Dispose();
            throw new ModelFormatException(path, null,
                $"the file is {fileLength} bytes, shorter than the 8-byte header length.");
        }
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        SafetensorsFile? file = null;
        byte* pointer = null;
        try
        {
            // Copy-on-write: the file is opened read-only, and a write through a tensor view
            // touches a private page instead of faulting on a read-only one.
            map = MemoryMappedFile.CreateFromFile(stream, null, 0,
                MemoryMappedFileAccess.CopyOnWrite, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.CopyOnWrite);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            byte* basePointer = pointer + view.PointerOffset;
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(
                new ReadOnlySpan<byte>(basePointer, 8));
            file = new SafetensorsFile(path, map, view, basePointer,
                headerLength > (ulong)(fileLength - 8) ? 0 : (long)headerLength);
            if (headerLength > (ulong)(fileLength - 8))
                throw new ModelFormatException(path, null,
                    $"the header length is {headerLength} bytes but the file has only "
                    + $"{fileLength - 8} bytes after the 8-byte length: a corrupt or truncated "
                    + "file.");
            if ((long)headerLength > MaxHeaderLength)
                throw new ModelFormatException(path, null,
                    $"the header length {headerLength} exceeds the limit of {MaxHeaderLength}.");
            var header = new ReadOnlySpan<byte>(basePointer + 8, (int)headerLength);
            var (tensors, metadata) =
                ParseHeader(file, header, fileLength - 8 - (long)headerLength);
            file._tensors = tensors;
            foreach (var t in tensors)
                file._byName[t.Name] = t;
            file.Metadata = metadata;
            return file;
        }
        catch
        {
            if (file is not null)
                file.Dispose();
            else
            {
                if (pointer != null)
                    view!.SafeMemoryMappedViewHandle.ReleasePointer();
                view?.Dispose();
                map?.Dispose();
            }
            stream.Dispose();
            throw;
        }
    }

    private static (SafetensorsTensor[], Dictionary<string, string>) ParseHeader(
        SafetensorsFile file, ReadOnlySpan<byte> header, long dataLength)
    {
        string path = file.Path;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray(),
                new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, null,
                $"the header is not valid JSON: {e.Message}", e);
        }
        using var _ = document;
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, null,
                $"the header is a JSON {root.ValueKind}, not an object.");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var tensors = new List<SafetensorsTensor>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            string name = property.Name;
            if (!seen.Add(name))
                throw new ModelFormatException(path, name, "appears twice in the header.");
            if (name == "__metadata__")
            {
                ReadMetadata(path, property.Value, metadata);
                continue;
            }
            tensors.Add(ReadTensor(file, name, property.Value));
        }
        CheckLayout(path, tensors, dataLength);
        return (tensors.ToArray(), metadata);
    }

    private static void ReadMetadata(string path, JsonElement value,
        Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null)
            return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, null,
                $"__metadata__ is a JSON {value.ValueKind}; it must be a map of strings.");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new ModelFormatException(path, null,
                    $"__metadata__ entry '{entry.Name}' is a JSON {entry.Value.ValueKind}; "
                    + "metadata values must be strings.");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static SafetensorsTensor ReadTensor(SafetensorsFile file, string name,
        JsonElement entry)
    {
        string path = file.Path;
        ModelFormatException Error(string message) => new(path, name, message);
        if (entry.ValueKind != JsonValueKind.Object)
            throw Error($"the header entry is a JSON {entry.ValueKind}, not an object.");

        if (!entry.TryGetProperty("dtype", out var dtypeElement)
            || dtypeElement.ValueKind != JsonValueKind.String)
            throw Error("the header entry has no \"dtype\" string.");
        string dtypeText = dtypeElement.GetString()!;
        if (!SafetensorsDTypeExtensions.TryParse(dtypeText, out var dtype))
            throw Error($"unknown dtype \"{dtypeText}\" (known: "
                + string.Join(", ", SafetensorsDTypeExtensions.Values) + ").");

        if (!entry.TryGetProperty("shape", out var shapeElement)
            || shapeElement.ValueKind != JsonValueKind.Array)
            throw Error("the header entry has no \"shape\" array.");
        var shape = new long[shapeElement.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long d))
                throw Error($"shape dim {i} is {dim.GetRawText()}, not an integer.");
            if (d < 0)
                throw Error($"shape dim {i} is {d}; dims must be >= 0.");
            shape[i++] = d;
            count = count == 0 || d == 0 ? 0
                : count > long.MaxValue / d
                    ? throw Error("the element count of the shape overflows.") : count * d;
        }

        if (!entry.TryGetProperty("data_offsets", out var offsets)
            || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Error("the header entry has no \"data_offsets\" array of two integers.");
        long begin = ReadOffset(offsets[0]), end = ReadOffset(offsets[1]);
        if (end < begin)
            throw Error($"data_offsets [{begin}, {end}] end before they begin.");

        int bits = dtype.BitSize();
        if (count > long.MaxValue / bits)
            throw Error("the byte size of the shape overflows.");
        long bitCount = count * bits;
        if (bitCount % 8 != 0)
            throw Error($"{count} elements of {dtype} ({bits} bits) do not fill whole bytes.");
        long expected = bitCount / 8;
        if (end - begin != expected)
            throw Error($"data_offsets [{begin}, {end}] hold {end - begin} bytes but shape "
                + $"[{string.Join(", ", shape)}] of {dtype} needs {expected} bytes.");
        return new SafetensorsTensor(file, name, dtype, shape, count, begin, end);

        long ReadOffset(JsonElement e) =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) && v >= 0 ? v
                : throw Error($"data offset {e.GetRawText()} is not a non-negative integer.");
    }

    private static void CheckLayout(string path, List<SafetensorsTensor> tensors,
        long dataLength)
    {
        var sorted = tensors.OrderBy(t => t.DataBegin).ThenBy(t => t.DataEnd).ToArray();
        long position = 0;
        SafetensorsTensor? previous = null;
        foreach (var t in sorted)
        {
            if (t.DataBegin < position)
                throw new ModelFormatException(path, t.Name,
                    $"data_offsets [{t.DataBegin}, {t.DataEnd}] overlap tensor "
                    + $"'{previous!.Name}' [{previous.DataBegin}, {previous.DataEnd}].");
            if (t.DataBegin > position)
                throw new ModelFormatException(path, t.Name,
                    $"data_offsets [{t.DataBegin}, {t.DataEnd}] leave a gap of "
                    + $"{t.DataBegin - position} bytes after "
                    + (previous is null ? "the header" : $"tensor '{previous.Name}'")
                    + $" (which ends at {position}).");
            position = t.DataEnd;
            previous = t;
        }
        if (position > dataLength)
            throw new ModelFormatException(path, previous!.Name,
                $"ends at data offset {position} but the file holds only {dataLength} data "
                + "bytes after the header: the file is truncated.");
        if (position < dataLength)
            throw new ModelFormatException(path, null,
                $"the tensors end at data offset {position} but the file holds {dataLength} "
                + $"data bytes: {dataLength - position} bytes belong to no tensor.");
    }

    /// <summary>Unmaps the file; idempotent. Tensors of the file throw
    /// <see cref="ObjectDisposedException"/> afterwards.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    /// <inheritdoc/>
    public override string ToString() => $"{Path} ({_tensors.Length} tensors)";
}
