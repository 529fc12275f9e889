using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Managed.Cli;

/// <summary>`managed forward`: the logits of every position of a token id file, as raw
/// little-endian float32 [tokens, vocab].</summary>
internal static class ForwardCommand
{
    // Positions per Append call: bounds the logits buffer (chunk × vocab floats).
    private const int Chunk = 256;

    public static int Run(CliOptions o, CliContext c)
    {
        string idsPath = o.Ids ?? throw new UsageException("forward needs --ids FILE (the "
            + "token ids to run)");
        string outPath = o.Output ?? throw new UsageException("forward needs --out FILE (where "
            + "the logits go)");
        var ids = TokenIds.Read(idsPath);
        string directory = o.Model ?? ShippedModel.Find();
        using var model = c.OpenModel(new ModelRequest(directory, o.Device, o.Attention));
        TokenIds.Check(ids, model, idsPath);
        int vocab = model.VocabSize;
        var logits = new float[Math.Min(Chunk, ids.Length) * vocab];   // (chunk, vocab)
        using (var file = new FileStream(outPath, FileMode.Create, FileAccess.Write))
        {
            model.Reset();
            for (int p = 0; p < ids.Length; p += Chunk)
            {
                int count = Math.Min(Chunk, ids.Length - p);
                var rows = logits.AsSpan(0, count * vocab);
                model.Append(0, ids.AsSpan(p, count), rows);
                if (!BitConverter.IsLittleEndian)
                    foreach (ref float x in rows)
                        x = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReverseEndianness(
                            BitConverter.SingleToInt32Bits(x)));
                file.Write(MemoryMarshal.AsBytes(rows));
            }
        }
        c.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote logits [{ids.Length}, {vocab}] (float32, little-endian, row-major) to "
            + $"{outPath}"));
        return 0;
    }
}
