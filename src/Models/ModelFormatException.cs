namespace Managed.Models;

/// <summary>
/// A checkpoint or config file that cannot be used: a malformed safetensors header, a truncated
/// file, a tensor whose shape disagrees with the config, an unsupported architecture. The
/// message names the file and, where one is involved, the tensor; so do
/// <see cref="FilePath"/> and <see cref="TensorName"/>.
/// </summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>An exception about <paramref name="filePath"/> (and
    /// <paramref name="tensorName"/>, if any); the message is prefixed with both.</summary>
    public ModelFormatException(string filePath, string? tensorName, string message,
        Exception? innerException = null)
        : base(Format(filePath, tensorName, message), innerException)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file at fault (config.json, a .safetensors file or a shard index).</summary>
    public string FilePath { get; }

    /// <summary>The tensor at fault, or null when the problem is not about one tensor.</summary>
    public string? TensorName { get; }

    private static string Format(string filePath, string? tensorName, string message) =>
        tensorName is null
            ? $"{filePath}: {message}"
            : $"{filePath}: tensor '{tensorName}': {message}";
}
