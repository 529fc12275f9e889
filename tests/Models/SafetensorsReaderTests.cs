using Managed.Kernels.Layouts;
using Managed.Models;
using Managed.Tensors;
using Xunit;
using static Managed.Tests.Models.SafetensorsBytes;

namespace Managed.Tests.Models;

public sealed class SafetensorsReaderTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private ModelFormatException OpenFails(string name, byte[] bytes)
    {
        string path = _dir.Write(name, bytes);
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.Contains(path, e.Message);
        return e;
    }

    [Fact]
    public void WeightDtypesReadWithoutCopy()
    {
        string path = _dir.Write("w.safetensors", Build(
            ("f32", "F32", [2, 3], Floats(1, 2, 3, 4, 5, -6)),
            ("f16", "F16", [3], Halves(0.5f, -1.5f, 2048)),
            ("bf16", "BF16", [2, 1], BFloat16s(3.0f, -0.25f))));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(3, file.Tensors.Count);

        var f32 = file["f32"];
        Assert.Equal(SafetensorsDType.F32, f32.DType);
        Assert.Equal(DataType.Float32, f32.DataType);
        Assert.Equal([2L, 3L], f32.Shape);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, -6 }, f32.AsMemory<float>().ToArray());
        Assert.Equal(new[] { 0.5f, -1.5f, 2048f },
            file["f16"].AsMemory<Half>().ToArray().Select(h => (float)h));
        Assert.Equal(new[] { 3.0f, -0.25f },
            file["bf16"].AsMemory<BFloat16>().ToArray().Select(b => (float)b));

        // The memory is the mapping itself: its address is inside the file's data.
        unsafe
        {
            using var pin = f32.AsMemory<float>().Pin();
            using var pin2 = f32.AsMemory<float>().Pin();
            Assert.True(pin.Pointer == pin2.Pointer);
        }
        Assert.Equal(f32.FileOffset + 24, file["f16"].FileOffset);
    }

    [Fact]
    public void NdTensorWrapsTheMappingAndDiesWithTheFile()
    {
        string path = _dir.Write("t.safetensors", Build(
            ("w", "BF16", [2, 2], BFloat16s(1, 2, 3, 4)),
            ("h", "F16", [4], Halves(1, 2, 3, 4))));
        var file = SafetensorsFile.Open(path);
        var tensor = file["w"].ToNdTensor();
        Assert.Equal(DataType.BFloat16, tensor.DataType);
        Assert.Equal([2, 2], tensor.Shape.ToArray());
        Assert.False(tensor.OwnsMemory);
        Assert.Equal(4f, (float)tensor.AsSpan<BFloat16>()[3]);
        using var widened = tensor.ConvertTo(DataType.Float32);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, widened.AsSpan().ToArray());

        // Writes go to private copy-on-write pages, not to the file.
        tensor.AsSpan<BFloat16>()[0] = (BFloat16)9f;
        Assert.Equal(9f, (float)file["w"].AsMemory<BFloat16>().Span[0]);
        file.Dispose();
        Assert.Equal(Build(("w", "BF16", [2, 2], BFloat16s(1, 2, 3, 4)),
            ("h", "F16", [4], Halves(1, 2, 3, 4))), File.ReadAllBytes(path));

        Assert.True(file.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => tensor.AsSpan<BFloat16>());
        Assert.Throws<ObjectDisposedException>(() => file["h"].AsMemory<Half>());
        Assert.Throws<ObjectDisposedException>(() => file["h"].GetBytes().Length);
    }

    [Fact]
    public void OtherDtypesParseButAreNotWeights()
    {
        string path = _dir.Write("o.safetensors", Build(
            ("i64", "I64", [2], new byte[16]),
            ("f64", "F64", [1], new byte[8]),
            ("i32", "I32", [1], new byte[4]),
            ("i16", "I16", [1], new byte[2]),
            ("i8", "I8", [3], new byte[3]),
            ("u8", "U8", [1], new byte[] { 7 }),
            ("b", "BOOL", [2], new byte[2]),
            ("e4", "F8_E4M3", [4], new byte[4]),
            ("e5", "F8_E5M2", [1], new byte[1]),
            ("f4", "F4", [4], new byte[2])));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(SafetensorsDType.F8_E4M3, file["e4"].DType);
        Assert.Null(file["i64"].DataType);
        Assert.Equal(7, file["u8"].GetBytes()[0]);
        Assert.Equal(2, file["f4"].ByteLength);
        var e = Assert.Throws<ModelFormatException>(() => file["i64"].AsMemory<float>());
        Assert.Equal("i64", e.TensorName);
        Assert.Contains("I64", e.Message);
        Assert.Contains("F32, F16 or BF16", e.Message);
        Assert.Throws<ModelFormatException>(() => file["e4"].ToNdTensor());
        // A weight type read as the wrong element type.
        string p2 = _dir.Write("f.safetensors", Build(("x", "F16", [1], Halves(1))));
        using var f2 = SafetensorsFile.Open(p2);
        var wrong = Assert.Throws<ModelFormatException>(() => f2["x"].AsMemory<float>());
        Assert.Contains("Single", wrong.Message);
    }

    [Fact]
    public void EmptyTensorsAndMetadata()
    {
        string path = _dir.Write("e.safetensors", Build("{\"format\":\"pt\",\"note\":\"hi\"}",
            ("empty", "F32", [0, 4], []),
            ("x", "F16", [2], Halves(1, 2)),
            ("empty2", "BF16", [3, 0], [])));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("hi", file.Metadata["note"]);
        var empty = file["empty"];
        Assert.Equal(0, empty.ElementCount);
        Assert.Equal(0, empty.AsMemory<float>().Length);
        using var t = empty.ToNdTensor();
        Assert.Equal(0, t.ElementCount);
        Assert.Equal([3, 0], file["empty2"].ToNdTensor().Shape.ToArray());

        // A file of nothing but an empty tensor, and one with no tensors at all.
        using var only = SafetensorsFile.Open(
            _dir.Write("only.safetensors", Build(("z", "F32", [0], []))));
        Assert.Single(only.Tensors);
        using var none = SafetensorsFile.Open(_dir.Write("none.safetensors", Raw("{}", [])));
        Assert.Empty(none.Tensors);
        Assert.Empty(none.Metadata);
    }

    [Fact]
    public void HeaderLengthBeyondTheFile()
    {
        var e = OpenFails("len.safetensors", Raw("{}", [], headerLength: 1000));
        Assert.Contains("header length is 1000", e.Message);
        Assert.Contains("shorter than the 8-byte",
            OpenFails("tiny.safetensors", [1, 2, 3]).Message);
        Assert.Contains("header length",
            OpenFails("huge.safetensors", Raw("{}", [], headerLength: long.MaxValue)).Message);
    }

    [Fact]
    public void BadJson()
    {
        Assert.Contains("not valid JSON",
            OpenFails("j.safetensors", Raw("{\"a\": {\"dtype\": ", [])).Message);
        Assert.Contains("not an object", OpenFails("arr.safetensors", Raw("[1,2]", [])).Message);
        var e = OpenFails("meta.safetensors", Raw("{\"__metadata__\":{\"k\":1}}", []));
        Assert.Contains("metadata values must be strings", e.Message);
        var noDtype = OpenFails("nod.safetensors",
            Raw("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]));
        Assert.Equal("w", noDtype.TensorName);
        Assert.Contains("dtype", noDtype.Message);
        var dup = OpenFails("dup.safetensors", Raw(
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
            + "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", new byte[2]));
        Assert.Contains("twice", dup.Message);
    }

    [Fact]
    public void UnknownDtype()
    {
        var e = OpenFails("u.safetensors",
            Raw("{\"w\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,2]}}", new byte[2]));
        Assert.Equal("w", e.TensorName);
        Assert.Contains("unknown dtype \"F12\"", e.Message);
        Assert.Contains("BF16", e.Message);       // lists the known ones
    }

    [Fact]
    public void NegativeOrFractionalDims()
    {
        var e = OpenFails("neg.safetensors",
            Raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", []));
        Assert.Equal("w", e.TensorName);
        Assert.Contains("dim 0 is -1", e.Message);
        Assert.Contains("not an integer", OpenFails("frac.safetensors",
            Raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}",
                new byte[1])).Message);
    }

    [Fact]
    public void ByteSizeMismatch()
    {
        var e = OpenFails("size.safetensors",
            Raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}",
                new byte[12]));
        Assert.Equal("w", e.TensorName);
        Assert.Contains("hold 12 bytes", e.Message);
        Assert.Contains("needs 16 bytes", e.Message);
    }

    [Fact]
    public void OverlappingOffsets()
    {
        var e = OpenFails("overlap.safetensors", Raw(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]));
        Assert.Equal("b", e.TensorName);
        Assert.Contains("overlap tensor 'a'", e.Message);
    }

    [Fact]
    public void GapBetweenTensors()
    {
        var e = OpenFails("gap.safetensors", Raw(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", new byte[12]));
        Assert.Equal("b", e.TensorName);
        Assert.Contains("gap of 4 bytes after tensor 'a'", e.Message);
        var first = OpenFails("gap0.safetensors",
            Raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}", new byte[3]));
        Assert.Contains("after the header", first.Message);
    }

    [Fact]
    public void TruncatedFileAndTrailingBytes()
    {
        var whole = Build(("a", "F32", [4], Floats(1, 2, 3, 4)),
            ("b", "F32", [4], Floats(5, 6, 7, 8)));
        var e = OpenFails("trunc.safetensors", whole[..^5]);
        Assert.Equal("b", e.TensorName);
        Assert.Contains("truncated", e.Message);
        var trailing = OpenFails("trail.safetensors", [.. whole, 0, 0, 0]);
        Assert.Contains("3 bytes belong to no tensor", trailing.Message);
        // Cut inside the header: the header length now runs past the end.
        Assert.Contains("header length", OpenFails("cut.safetensors", whole[..20]).Message);
    }

    [Fact]
    public void MissingTensorNamesFileAndTensor()
    {
        string path = _dir.Write("m.safetensors", Build(("a", "U8", [1], [1])));
        using var file = SafetensorsFile.Open(path);
        var e = Assert.Throws<ModelFormatException>(() => file["nope"]);
        Assert.Equal("nope", e.TensorName);
        Assert.Equal(path, e.FilePath);
        Assert.False(file.Contains("nope"));
        Assert.True(file.TryGetTensor("a", out _));
    }

    [Fact]
    public void ShardedCheckpointLooksUpAcrossShards()
    {
        _dir.Write("model-00001-of-00002.safetensors", Build(
            ("model.embed_tokens.weight", "BF16", [4, 2], BFloat16s(1, 2, 3, 4, 5, 6, 7, 8)),
            ("model.norm.weight", "F32", [2], Floats(1, 1))));
        _dir.Write("model-00002-of-00002.safetensors", Build(
            ("lm_head.weight", "F16", [4, 2], Halves(8, 7, 6, 5, 4, 3, 2, 1))));
        _dir.Write("model.safetensors.index.json", """
            {"metadata": {"total_size": 40},
             "weight_map": {
               "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
               "model.norm.weight": "model-00001-of-00002.safetensors",
               "lm_head.weight": "model-00002-of-00002.safetensors"}}
            """);
        var checkpoint = SafetensorsCheckpoint.Open(_dir.Path);
        Assert.Equal(2, checkpoint.Files.Count);
        Assert.Equal(3, checkpoint.Count);
        Assert.EndsWith("model-00002-of-00002.safetensors", checkpoint["lm_head.weight"].File.Path);
        Assert.Equal(8f, (float)checkpoint["lm_head.weight"].AsMemory<Half>().Span[0]);
        Assert.Equal(8f, (float)checkpoint["model.embed_tokens.weight"]
            .AsMemory<BFloat16>().Span[7]);
        var missing = Assert.Throws<ModelFormatException>(() => checkpoint["x"]);
        Assert.EndsWith("model.safetensors.index.json", missing.FilePath);
        checkpoint.Dispose();
        Assert.All(checkpoint.Files, f => Assert.True(f.IsDisposed));
        Assert.Throws<ObjectDisposedException>(
            () => checkpoint["model.norm.weight"].AsMemory<float>());
    }

    [Fact]
    public void ShardIndexErrors()
    {
        _dir.Write("s1.safetensors", Build(("a", "F32", [1], Floats(1))));
        string index = _dir.Write("bad.index.json",
            """{"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}}""");
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsCheckpoint.Open(index));
        Assert.Equal("b", e.TensorName);
        Assert.Equal(index, e.FilePath);
        Assert.Contains("s1.safetensors", e.Message);

        string noShard = _dir.Write("noshard.index.json",
            """{"weight_map": {"a": "s9.safetensors"}}""");
        Assert.Contains("does not exist",
            Assert.Throws<ModelFormatException>(() => SafetensorsCheckpoint.Open(noShard)).Message);
        string noMap = _dir.Write("nomap.index.json", """{"metadata": {}}""");
        Assert.Contains("weight_map",
            Assert.Throws<ModelFormatException>(() => SafetensorsCheckpoint.Open(noMap)).Message);
    }

    [Fact]
    public void SingleFileCheckpointFromDirectory()
    {
        _dir.Write("model.safetensors", Build(("a", "F32", [1], Floats(2))));
        using var checkpoint = SafetensorsCheckpoint.Open(_dir.Path);
        Assert.Single(checkpoint.Files);
        Assert.Equal(2f, checkpoint["a"].AsMemory<float>().Span[0]);
        using var empty = new TempDir();
        Assert.Throws<FileNotFoundException>(() => SafetensorsCheckpoint.Open(empty.Path));
    }
}
