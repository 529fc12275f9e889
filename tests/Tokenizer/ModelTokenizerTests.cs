using System.Text.Json;
using Managed.Cli;
using Xunit;

namespace Managed.Tests.Tokenizer;

/// <summary>
/// The front end's tokenizer on a tiny GPT-2 style byte-level vocabulary written by each test:
/// ids 1..256 are the 256 bytes (GPT-2's byte-to-character map), id 0 is &lt;|endoftext|&gt;,
/// then one id per merge.
/// </summary>
public sealed class ModelTokenizerTests : IDisposable
{
    private const string Eot = "<|endoftext|>";
    private static readonly string[] Merges = ["Ġ t", "h e", "Ġt he", "Ġ a", "n d", "Ġa nd"];
    private readonly string _dir = Directory.CreateTempSubdirectory("managed-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to
    /// 256 + n in byte order.</summary>
    private static char[] ByteChars()
    {
        var printable = new List<int>();
        for (int b = '!'; b <= '~'; b++) printable.Add(b);
        for (int b = 0xA1; b <= 0xAC; b++) printable.Add(b);
        for (int b = 0xAE; b <= 0xFF; b++) printable.Add(b);
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
            map[b] = printable.Contains(b) ? (char)b : (char)(256 + n++);
        return map;
    }

    private static int ByteId(char c) => c + 1;      // ASCII byte b has id b + 1

    private void WriteVocab()
    {
        var chars = ByteChars();
        var vocab = new Dictionary<string, int> { [Eot] = 0 };
        for (int b = 0; b < 256; b++) vocab[chars[b].ToString()] = b + 1;
        foreach (string m in Merges) vocab[m.Replace(" ", "")] = vocab.Count;
        File.WriteAllText(Path.Combine(_dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(_dir, "merges.txt"),
            "#version: 0.2\n" + string.Join("\n", Merges) + "\n");
    }

    private void WriteTokenizerConfig(bool addBos)
    {
        var config = new Dictionary<string, object>
        {
            ["bos_token"] = Eot,
            ["eos_token"] = new Dictionary<string, object> { ["content"] = Eot },
            ["add_bos_token"] = addBos,
            ["added_tokens_decoder"] = new Dictionary<string, object>
            {
                ["0"] = new Dictionary<string, object> { ["content"] = Eot, ["special"] = true },
            },
        };
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"),
            JsonSerializer.Serialize(config));
    }

    [Fact]
    public void KnownMergesGiveKnownIds()
    {
        WriteVocab();
        var tok = ModelTokenizer.Open(_dir);
        Assert.Equal(TokenizerKind.ByteLevelBpe, tok.Kind);
        Assert.False(tok.AddBos);
        // "the" -> t + he (no merge "t he"); " the" -> Ġt + he -> Ġthe; " and" -> Ġand.
        int he = 257 + 1, gThe = 257 + 2, gAnd = 257 + 5;
        Assert.Equal([ByteId('t'), he, gThe, gAnd], tok.Encode("the the and"));
        // Two spaces: the first stays alone (\s+(?!\S)), the second joins "a" (Ġa, no "Ġa x").
        Assert.Equal([ByteId('x'), ByteId(' '), 257 + 3, ByteId('x')], tok.Encode("x  ax"));
    }

    [Theory]
    [InlineData("In the beginning God created the heaven and the earth.")]
    [InlineData("  leading and trailing spaces, a\ttab\nand\n\nnew lines  ")]
    [InlineData("naïve café façade — “quoted” … 日本語 🙂")]
    [InlineData("")]
    public void RoundTrips(string text)
    {
        WriteVocab();
        WriteTokenizerConfig(addBos: true);
        var tok = ModelTokenizer.Open(_dir);
        int[] ids = tok.Encode(text);
        Assert.Equal(0, ids[0]);
        Assert.Equal(text, tok.Decode(ids));
    }

    [Fact]
    public void NonAsciiIsEncodedAsUtf8Bytes()
    {
        WriteVocab();
        var tok = ModelTokenizer.Open(_dir);
        // é = C3 A9: two byte ids, none merged.
        Assert.Equal([0xC3 + 1, 0xA9 + 1], tok.Encode("é"));
    }

    [Fact]
    public void BosAndEosComeFromTheConfigFiles()
    {
        WriteVocab();
        WriteTokenizerConfig(addBos: true);
        File.WriteAllText(Path.Combine(_dir, "config.json"),
            """{"bos_token_id": 0, "eos_token_id": [0, 7]}""");
        var tok = ModelTokenizer.Open(_dir);
        Assert.True(tok.AddBos);
        Assert.Equal(0, tok.BosId);
        Assert.Equal([0, 7], tok.EosIds);
        Assert.Equal([0, ByteId('a')], tok.Encode("a"));
        Assert.Equal(["vocab.json", "merges.txt", "tokenizer_config.json", "config.json"],
            tok.Files);
    }

    [Fact]
    public void SpecialTokenInTextStaysWholeAndDecodeDropsIt()
    {
        WriteVocab();
        WriteTokenizerConfig(addBos: false);
        var tok = ModelTokenizer.Open(_dir);
        Assert.Equal([ByteId('x'), 0, ByteId('y')], tok.Encode($"x{Eot}y"));
        Assert.Equal("xy", tok.Decode([ByteId('x'), 0, ByteId('y')]));
    }

    [Fact]
    public void NoTokenizerFileIsAnErrorNamingTheDirectory()
    {
        File.WriteAllText(Path.Combine(_dir, "config.json"), "{}");
        var e = Assert.Throws<FileNotFoundException>(() => ModelTokenizer.Open(_dir));
        Assert.Contains(_dir, e.Message);
        Assert.Contains("vocab.json", e.Message);
        Assert.Contains("tokenizer.model", e.Message);
    }

    [Fact]
    public void VocabWithoutMergesIsAnErrorNamingTheMissingFile()
    {
        WriteVocab();
        File.Delete(Path.Combine(_dir, "merges.txt"));
        var e = Assert.Throws<FileNotFoundException>(() => ModelTokenizer.Open(_dir));
        Assert.Contains(_dir, e.Message);
        Assert.Contains("but not merges.txt", e.Message);
    }

    [Fact]
    public void BosTokenMissingFromTheVocabularyIsAnError()
    {
        WriteVocab();
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"),
            """{"bos_token": "<s>", "add_bos_token": true}""");
        var e = Assert.Throws<InvalidDataException>(() => ModelTokenizer.Open(_dir));
        Assert.Contains("<s>", e.Message);
        Assert.Contains("tokenizer_config.json", e.Message);
    }
}
