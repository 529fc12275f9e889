using System.Text;

namespace Managed.Bench.Onnx;

/// <summary>
/// The few protobuf wire-format primitives an ONNX model needs (varint, fixed32, length-delimited),
/// so no protoc or generated code is required. Field numbers come from onnx/onnx.proto.
/// </summary>
internal sealed class ProtoWriter
{
    private readonly MemoryStream _buffer = new();

    public byte[] ToArray() => _buffer.ToArray();

    /// <summary>Varint field (wire type 0): int32, int64, enum.</summary>
    public ProtoWriter Int(int field, long value)
    {
        Tag(field, 0);
        Varint((ulong)value);
        return this;
    }

    /// <summary>Fixed32 field (wire type 5): float.</summary>
    public ProtoWriter Float(int field, float value)
    {
        Tag(field, 5);
        Span<byte> bytes = stackalloc byte[4];
        BitConverter.TryWriteBytes(bytes, value); // little-endian on every host .NET runs on here
        _buffer.Write(bytes);
        return this;
    }

    /// <summary>Length-delimited field (wire type 2): string.</summary>
    public ProtoWriter String(int field, string value) =>
        Bytes(field, Encoding.UTF8.GetBytes(value));

    /// <summary>Length-delimited field (wire type 2): embedded message.</summary>
    public ProtoWriter Message(int field, ProtoWriter message) => Bytes(field, message.ToArray());

    private ProtoWriter Bytes(int field, byte[] bytes)
    {
        Tag(field, 2);
        Varint((ulong)bytes.Length);
        _buffer.Write(bytes);
        return this;
    }

    private void Tag(int field, int wireType) => Varint((ulong)((field << 3) | wireType));

    private void Varint(ulong value)
    {
        while (value >= 0x80)
        {
            _buffer.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _buffer.WriteByte((byte)value);
    }
}
