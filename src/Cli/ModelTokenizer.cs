using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Managed.Cli;

/// <summary>The tokenizer file format a model directory holds.</summary>
internal enum TokenizerKind
{
    /// <summary>GPT-2 byte-level BPE: <c>vocab.json</c> + <c>merges.txt</c>.</summary>
    ByteLevelBpe,

    /// <summary>SentencePiece BPE (Llama, Mistral): <c>tokenizer.model</c>.</summary>
    SentencePiece,
}

/// <summary>
/// A model directory's tokenizer, for the front end only (the library takes and returns token
/// ids). Text -> ids is <c>[bos] + tokens(text)</c> where the model adds a bos; ids -> text
/// drops special tokens.
/// </summary>
/// <remarks>
/// Files read, all from the model directory:
/// <list type="bullet">
/// <item><c>vocab.json</c> + <c>merges.txt</c>: GPT-2 byte-level BPE (GPT-2's split regex, no
/// prefix space), through Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> with
/// <see cref="BpeOptions.ByteLevel"/>; preferred when both exist.</item>
/// <item>otherwise <c>tokenizer.model</c>: SentencePiece BPE through
/// <see cref="LlamaTokenizer"/>.</item>
/// <item><c>tokenizer_config.json</c> (optional): <c>bos_token</c>, <c>eos_token</c>,
/// <c>add_bos_token</c>, and <c>added_tokens_decoder</c> (kept whole, never split).</item>
/// <item><c>config.json</c> and <c>generation_config.json</c> (optional):
/// <c>bos_token_id</c>, <c>eos_token_id</c> (a number or a list).</item>
/// </list>
/// <c>tokenizer.json</c> is not read: its pre-tokenizer and post-processor take many forms, and
/// vocab.json + merges.txt say the same for the byte-level models this reads.
/// Without <c>add_bos_token</c>, a bos is added for SentencePiece (as HF's LlamaTokenizer
/// does) and not for byte-level BPE (as HF's GPT2Tokenizer does).
/// </remarks>
internal sealed class ModelTokenizer
{
    /// <summary>GPT-2's pre-tokenizer split (HF tokenizers' ByteLevel pre-tokenizer).</summary>
    internal const string Gpt2SplitPattern =
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly Tokenizer _tokenizer;

    private ModelTokenizer(Tokenizer tokenizer, TokenizerKind kind, string[] files, int? bosId,
        bool addBos, IReadOnlyList<int> eosIds)
    {
        _tokenizer = tokenizer;
        Kind = kind;
        Files = files;
        BosId = bosId;
        AddBos = addBos;
        EosIds = eosIds;
    }

    /// <summary>The format read.</summary>
    public TokenizerKind Kind { get; }

    /// <summary>The names of the files read, in the order read.</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>The bos id, if the model has one.</summary>
    public int? BosId { get; }

    /// <summary>Whether <see cref="Encode"/> puts <see cref="BosId"/> first.</summary>
    public bool AddBos { get; }

    /// <summary>The ids that end generation (eos from every file that names one).</summary>
    public IReadOnlyList<int> EosIds { get; }

    /// <summary>ids = [bos if <see cref="AddBos"/>] + tokens(<paramref name="text"/>).</summary>
    public int[] Encode(string text)
    {
        var ids = _tokenizer switch
        {
            SentencePieceTokenizer sp => sp.EncodeToIds(text, addBeginningOfSentence: false,
                addEndOfSentence: false),
            _ => _tokenizer.EncodeToIds(text),
        };
        if (!AddBos || BosId is not int bos)
            return [.. ids];
        var result = new int[ids.Count + 1];
        result[0] = bos;
        for (int i = 0; i < ids.Count; i++) result[i + 1] = ids[i];
        return result;
    }

    /// <summary>The text of <paramref name="ids"/>, special tokens (bos, eos, added special
    /// tokens) left out.</summary>
    public string Decode(IEnumerable<int> ids) => _tokenizer switch
    {
        BpeTokenizer bpe => bpe.Decode(ids, considerSpecialTokens: false),
        SentencePieceTokenizer sp => sp.Decode(ids, considerSpecialTokens: false),
        _ => _tokenizer.Decode(ids),
    };

    /// <summary>Opens the tokenizer of the model directory <paramref name="directory"/>.</summary>
    /// <exception cref="FileNotFoundException">The directory holds no tokenizer file we read,
    /// or only one of vocab.json and merges.txt.</exception>
    /// <exception cref="InvalidDataException">A file is malformed, or names a bos/eos token
    /// the vocabulary lacks.</exception>
    public static ModelTokenizer Open(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"model directory '{directory}' does not exist");
        string vocabPath = Path.Combine(directory, "vocab.json");
        string mergesPath = Path.Combine(directory, "merges.txt");
        string spPath = Path.Combine(directory, "tokenizer.model");
        bool hasVocab = File.Exists(vocabPath), hasMerges = File.Exists(mergesPath);
        var settings = TokenizerSettings.Read(directory);

        if (hasVocab && hasMerges)
            return OpenByteLevel(vocabPath, mergesPath, settings);
        if (File.Exists(spPath))
            return OpenSentencePiece(spPath, settings);
        if (hasVocab != hasMerges)
            throw new FileNotFoundException($"no tokenizer in '{directory}': it has "
                + $"{(hasVocab ? "vocab.json" : "merges.txt")} but not "
                + $"{(hasVocab ? "merges.txt" : "vocab.json")} (byte-level BPE needs both)");
        string also = File.Exists(Path.Combine(directory, "tokenizer.json"))
            ? " (tokenizer.json alone is not read)" : "";
        throw new FileNotFoundException($"no tokenizer in '{directory}': expected vocab.json + "
            + $"merges.txt (GPT-2 byte-level BPE) or tokenizer.model (SentencePiece){also}");
    }

    private static ModelTokenizer OpenByteLevel(string vocabPath, string mergesPath,
        TokenizerSettings settings)
    {
        Dictionary<string, int> vocab;
        try
        {
            using var stream = File.OpenRead(vocabPath);
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(stream)
                ?? throw new InvalidDataException("null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{vocabPath}: not a JSON object of token -> id "
                + $"({e.Message})", e);
        }

        // Special tokens: the added tokens plus bos/eos, matched whole before the split.
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (content, id) in settings.AddedTokens)
            special[content] = id;
        foreach (string? token in new[] { settings.BosToken, settings.EosToken })
            if (token is not null && !special.ContainsKey(token)
                && vocab.TryGetValue(token, out int id))
                special[token] = id;

        var options = new BpeOptions(vocabPath, mergesPath)
        {
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(
                new Regex(Gpt2SplitPattern, RegexOptions.Compiled | RegexOptions.CultureInvariant),
                special.Count > 0 ? special : null),
            SpecialTokens = special.Count > 0 ? special : null,
        };
        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(options);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new InvalidDataException($"{vocabPath} + {mergesPath}: {e.Message}", e);
        }

        int? Lookup(string? token, string what)
        {
            if (token is null) return null;
            if (special.TryGetValue(token, out int id) || vocab.TryGetValue(token, out id))
                return id;
            throw new InvalidDataException($"{settings.ConfigSource}: {what} '{token}' is not in "
                + vocabPath);
        }

        int? bos = Lookup(settings.BosToken, "bos_token") ?? settings.BosId;
        var eos = new List<int>(settings.EosIds);
        if (Lookup(settings.EosToken, "eos_token") is int e0 && !eos.Contains(e0))
            eos.Insert(0, e0);
        return new ModelTokenizer(bpe, TokenizerKind.ByteLevelBpe,
            [Path.GetFileName(vocabPath), Path.GetFileName(mergesPath), .. settings.FilesRead],
            bos, (settings.AddBos ?? false) && bos is not null, eos);
    }

    private static ModelTokenizer OpenSentencePiece(string spPath, TokenizerSettings settings)
    {
        LlamaTokenizer sp;
        try
        {
            using var stream = File.OpenRead(spPath);
            var special = settings.AddedTokens.Count > 0
                ? settings.AddedTokens.ToDictionary(t => t.Content, t => t.Id) : null;
            sp = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false,
                specialTokens: special);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new InvalidDataException($"{spPath}: not a SentencePiece BPE model "
                + $"({e.Message})", e);
        }

        int? Lookup(string? token)
        {
            if (token is null) return null;
            if (sp.Vocabulary.TryGetValue(token, out int id)) return id;
            if (sp.SpecialTokens?.TryGetValue(token, out id) == true) return id;
            throw new InvalidDataException(
                $"{settings.ConfigSource}: '{token}' is not in {spPath}");
        }

        int bos = Lookup(settings.BosToken) ?? settings.BosId ?? sp.BeginningOfSentenceId;
        var eos = new List<int>(settings.EosIds);
        int e0 = Lookup(settings.EosToken) ?? sp.EndOfSentenceId;
        if (!eos.Contains(e0)) eos.Insert(0, e0);
        return new ModelTokenizer(sp, TokenizerKind.SentencePiece,
            [Path.GetFileName(spPath), .. settings.FilesRead], bos, settings.AddBos ?? true, eos);
    }

    /// <summary>What tokenizer_config.json, config.json and generation_config.json say about
    /// special tokens.</summary>
    private sealed class TokenizerSettings
    {
        public string? BosToken, EosToken;
        public bool? AddBos;
        public int? BosId;
        public List<int> EosIds = [];
        public List<(string Content, int Id)> AddedTokens = [];
        public List<string> FilesRead = [];
        public string ConfigSource = "tokenizer_config.json";

        public static TokenizerSettings Read(string directory)
        {
            var s = new TokenizerSettings();
            if (ReadJson(directory, "tokenizer_config.json", s.FilesRead) is JsonElement tc)
            {
                s.ConfigSource = Path.Combine(directory, "tokenizer_config.json");
                s.BosToken = TokenText(tc, "bos_token");
                s.EosToken = TokenText(tc, "eos_token");
                if (tc.TryGetProperty("add_bos_token", out var add)
                    && add.ValueKind is JsonValueKind.True or JsonValueKind.False)
                    s.AddBos = add.GetBoolean();
                if (tc.TryGetProperty("added_tokens_decoder", out var added)
                    && added.ValueKind == JsonValueKind.Object)
                    foreach (var entry in added.EnumerateObject())
                        if (int.TryParse(entry.Name, out int id)
                            && TokenText(entry.Value, "content") is string content)
                            s.AddedTokens.Add((content, id));
            }
            foreach (string name in new[] { "config.json", "generation_config.json" })
            {
                if (ReadJson(directory, name, s.FilesRead) is not JsonElement c) continue;
                if (c.TryGetProperty("bos_token_id", out var b)
                    && b.ValueKind == JsonValueKind.Number)
                    s.BosId ??= b.GetInt32();
                if (c.TryGetProperty("eos_token_id", out var e))
                {
                    JsonElement[] items = e.ValueKind == JsonValueKind.Array
                        ? [.. e.EnumerateArray()] : [e];
                    foreach (var item in items)
                        if (item.ValueKind == JsonValueKind.Number
                            && !s.EosIds.Contains(item.GetInt32()))
                            s.EosIds.Add(item.GetInt32());
                }
            }
            return s;
        }

        /// <summary>A token given as a string or as an object with "content".</summary>
        private static string? TokenText(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var v) ? v.ValueKind switch
            {
                JsonValueKind.String => v.GetString(),
                JsonValueKind.Object when v.TryGetProperty("content", out var c)
                    && c.ValueKind == JsonValueKind.String => c.GetString(),
                _ => null,
            } : null;

        private static JsonElement? ReadJson(string directory, string name, List<string> read)
        {
            string path = Path.Combine(directory, name);
            if (!File.Exists(path)) return null;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{path}: not a JSON object");
                read.Add(name);
                return doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}: {e.Message}", e);
            }
        }
    }
}
