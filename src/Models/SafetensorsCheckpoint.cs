using System.Text.Json;

namespace Managed.Models;

/// <summary>
/// The weights of a model: one <c>.safetensors</c> file, or the shards that a
/// <c>model.safetensors.index.json</c> lists (<c>{"metadata": {...}, "weight_map": {tensor
/// name: shard file}}</c>, shard paths relative to the index). One lookup by tensor name across
/// every shard; each shard is mapped once. Disposing the checkpoint unmaps every shard.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    /// <summary>The single-file name Hugging Face writes.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>The shard index name Hugging Face writes.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly SafetensorsFile[] _files;
    private readonly Dictionary<string, SafetensorsTensor> _byName;

    private SafetensorsCheckpoint(string path, SafetensorsFile[] files,
        Dictionary<string, SafetensorsTensor> byName)
    {
        Path = path;
        _files = files;
        _byName = byName;
    }

    /// <summary>The file opened: the .safetensors file or the index.</summary>
    public string Path { get; }

    /// <summary>The mapped files (one, or one per shard, in index order).</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>Every tensor name the checkpoint holds.</summary>
    public IEnumerable<string> TensorNames => _byName.Keys;

    /// <summary>Number of tensors.</summary>
    public int Count => _byName.Count;

    /// <summary>True when the checkpoint has a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor called <paramref name="name"/>, if any.</summary>
    public bool TryGetTensor(string name, out SafetensorsTensor tensor) =>
        _byName.TryGetValue(name, out tensor!);

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="ModelFormatException">No such tensor (the message names the
    /// checkpoint).</exception>
    public SafetensorsTensor this[string name] => _byName.TryGetValue(name, out var t)
        ? t : throw new ModelFormatException(Path, name, "no such tensor in the checkpoint.");

    /// <summary>Opens a checkpoint. <paramref name="path"/> is a model directory (its
    /// <see cref="IndexFileName"/> if present, else its <see cref="SingleFileName"/>), a
    /// .safetensors file, or a shard index (.json).</summary>
    /// <exception cref="FileNotFoundException">Nothing to open there.</exception>
    /// <exception cref="ModelFormatException">A file is malformed, the index names a shard
    /// that does not hold the tensor, or two files hold the same tensor.</exception>
    public static SafetensorsCheckpoint Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            string index = System.IO.Path.Combine(path, IndexFileName);
            string single = System.IO.Path.Combine(path, SingleFileName);
            if (File.Exists(index))
                return OpenIndex(index);
            if (File.Exists(single))
                return OpenFile(single);
            throw new FileNotFoundException(
                $"{path}: neither {IndexFileName} nor {SingleFileName} is there.", single);
        }
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return OpenIndex(path);
        return OpenFile(path);
    }

    private static SafetensorsCheckpoint OpenFile(string path)
    {
        var file = SafetensorsFile.Open(path);
        var byName = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
            byName[t.Name] = t;
        return new SafetensorsCheckpoint(path, [file], byName);
    }

    private static SafetensorsCheckpoint OpenIndex(string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var files = new List<SafetensorsFile>();
        var byShard = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            var byName = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
            foreach (var (name, shard) in weightMap)
            {
                if (!byShard.TryGetValue(shard, out var file))
                {
                    string shardPath = System.IO.Path.Combine(directory, shard);
                    if (!File.Exists(shardPath))
                        throw new ModelFormatException(indexPath, name,
                            $"the weight map names shard '{shard}', which does not exist "
                            + $"({shardPath}).");
                    file = SafetensorsFile.Open(shardPath);
                    files.Add(file);
                    byShard[shard] = file;
                }
                if (!file.TryGetTensor(name, out var tensor))
                    throw new ModelFormatException(indexPath, name,
                        $"the weight map puts it in '{file.Path}', which has no such tensor.");
                byName[name] = tensor;
            }
            return new SafetensorsCheckpoint(indexPath, files.ToArray(), byName);
        }
        catch
        {
            foreach (var file in files)
                file.Dispose();
            throw;
        }
    }

    private static List<(string Name, string Shard)> ReadWeightMap(string indexPath)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(indexPath, null,
                $"the shard index is not valid JSON: {e.Message}", e);
        }
        using var _ = document;
        if (document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("weight_map", out var map)
            || map.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(indexPath, null,
                "the shard index has no \"weight_map\" object.");
        var result = new List<(string, string)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String
                || string.IsNullOrEmpty(entry.Value.GetString()))
                throw new ModelFormatException(indexPath, entry.Name,
                    $"the weight map entry is {entry.Value.GetRawText()}, not a file name.");
            if (!seen.Add(entry.Name))
                throw new ModelFormatException(indexPath, entry.Name,
                    "appears twice in the weight map.");
            string shard = entry.Value.GetString()!;
            if (System.IO.Path.IsPathRooted(shard))
                throw new ModelFormatException(indexPath, entry.Name,
                    $"shard '{shard}' is an absolute path; shards are relative to the index.");
            result.Add((entry.Name, shard));
        }
        return result;
    }

    /// <summary>Unmaps every file; idempotent.</summary>
    public void Dispose()
    {
        foreach (var file in _files)
            file.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Path} ({_byName.Count} tensors in {_files.Length} files)";
}
