using System.Buffers.Binary;
using System.Text;

namespace Managed.Tests.Models;

/// <summary>Writes safetensors files byte by byte, independent of the reader: a header JSON
/// string written as given (so tests can make it lie) and the data bytes.</summary>
internal static class SafetensorsBytes
{
    public static byte[] Raw(string headerJson, byte[] data, long? headerLength = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(headerLength ?? header.Length));
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    /// <summary>A well-formed file: tensors laid out back to back in the given order.</summary>
    public static byte[] Build(
        params (string Name, string DType, long[] Shape, byte[] Data)[] tensors) =>
        Build(null, tensors);

    public static byte[] Build(string? metadataJson,
        params (string Name, string DType, long[] Shape, byte[] Data)[] tensors)
    {
        var json = new StringBuilder("{");
        long offset = 0;
        var data = new List<byte>();
        if (metadataJson is not null)
            json.Append("\"__metadata__\":").Append(metadataJson);
        foreach (var (name, dtype, shape, bytes) in tensors)
        {
            if (json.Length > 1)
                json.Append(',');
            json.Append($"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[")
                .Append(string.Join(",", shape))
                .Append($"],\"data_offsets\":[{offset},{offset + bytes.Length}]}}");
            offset += bytes.Length;
            data.AddRange(bytes);
        }
        json.Append('}');
        // The reference writer pads the header with spaces to a multiple of 8 bytes.
        while ((json.Length + 8) % 8 != 0)
            json.Append(' ');
        return Raw(json.ToString(), data.ToArray());
    }

    public static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    public static byte[] Halves(params float[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)values[i]);
        return bytes;
    }

    /// <summary>bfloat16 by truncation: the tests use values exact in bf16.</summary>
    public static byte[] BFloat16s(params float[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(values[i]);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), (ushort)(bits >> 16));
        }
        return bytes;
    }
}

/// <summary>A temporary directory, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(),
        "managed-models-" + Guid.NewGuid().ToString("N"));

    public string Write(string name, byte[] bytes)
    {
        string path = System.IO.Path.Combine(Path, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public string Write(string name, string text)
    {
        string path = System.IO.Path.Combine(Path, name);
        File.WriteAllText(path, text);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
