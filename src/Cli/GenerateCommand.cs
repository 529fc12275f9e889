using System.Diagnostics;
using System.Globalization;
using Managed.Models.Generation;
using Managed.Kernels.Matmul;

namespace Managed.Cli;

/// <summary>`managed generate`: text (or ids) after a prompt, printed as it comes.</summary>
internal static class GenerateCommand
{
    /// <summary>The prompt when none is given.</summary>
    public const string DefaultPrompt = "In the beginning";

    /// <summary>--max-new when not given.</summary>
    public const int DefaultMaxNew = 120;

    /// <summary>The sampling when no sampling option is given (and not --greedy).</summary>
    public static SamplingOptions DefaultSampling { get; } =
        new(Temperature: 0.8f, TopK: 40, TopP: 0.95f, RepetitionPenalty: 1.1f, Seed: 0);

    public static int Run(CliOptions o, CliContext c)
    {
        if (o is { Ids: not null, Prompt: not null })
            throw new UsageException("--ids and --prompt cannot be combined (--ids: token ids "
                + "in and out; --prompt: text in and out)");
        if (o.Greedy && (o.Temperature is not null || o.TopK is not null
                || o.TopP is not null || o.Seed is not null))
            throw new UsageException("--greedy cannot be combined with --temperature, --top-k, "
                + "--top-p or --seed (greedy decoding draws nothing)");
        var sampling = o.Greedy
            ? SamplingOptions.Greedy with
            {
                RepetitionPenalty = o.RepetitionPenalty ?? 1f,
            }
            : new SamplingOptions(o.Temperature ?? DefaultSampling.Temperature,
                o.TopK ?? DefaultSampling.TopK, o.TopP ?? DefaultSampling.TopP,
                o.RepetitionPenalty ?? DefaultSampling.RepetitionPenalty,
                o.Seed ?? DefaultSampling.Seed);

        string directory = o.Model ?? ShippedModel.Find();
        ModelTokenizer? tokenizer = null;
        string prompt = o.Prompt ?? DefaultPrompt;
        int[] ids;
        if (o.Ids is not null)
            ids = TokenIds.Read(o.Ids);
        else
        {
            tokenizer = ModelTokenizer.Open(directory);
            ids = tokenizer.Encode(prompt);
            if (ids.Length == 0)
                throw new UsageException("--prompt '': the prompt holds no token (the model "
                    + "adds no bos; give some text)");
        }

        if (o.LinearPrecisions is { Length: > 1 })
            throw new UsageException("--linear-precision takes one precision with generate");
        using var model = c.OpenModel(new ModelRequest(directory, o.Device, o.Attention,
            LinearPrecision: o.LinearPrecisions?[0] ?? LinearPrecision.Exact));
        TokenIds.Check(ids, model, o.Ids ?? "the prompt");
        var generator = new Generator(model, new GenerationOptions
        {
            MaxNewTokens = o.MaxNew ?? DefaultMaxNew,
            Sampling = sampling,
            StopTokens = o.Stop ?? [],
        });
        var watch = Stopwatch.StartNew();
        TimeSpan firstToken = default;
        GenerationResult result;
        if (tokenizer is null)
        {
            bool first = true;
            result = generator.Generate(ids, (_, token) =>
            {
                if (first) firstToken = watch.Elapsed;
                c.Out.Write(first ? token.ToString(CultureInfo.InvariantCulture)
                    : " " + token.ToString(CultureInfo.InvariantCulture));
                c.Out.Flush();
                first = false;
            });
            c.Out.WriteLine();
        }
        else
        {
            c.Out.Write(prompt);
            c.Out.Flush();
            var stream = new TextStream(tokenizer, c.Out);
            result = generator.Generate(ids, (_, token) =>
            {
                if (stream.Count == 0) firstToken = watch.Elapsed;
                stream.Add(token);
            });
            stream.Finish();
        }
        double seconds = watch.Elapsed.TotalSeconds;
        int n = result.Tokens.Length;
        c.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{n} tokens in {seconds:F2} s (first after {firstToken.TotalSeconds:F2} s, "
            + $"then {(n > 1 ? (n - 1) / (seconds - firstToken.TotalSeconds) : 0):F1} tokens/s)"
            + $"; stopped: {Describe(result.Reason)}"));
        return 0;
    }

    private static string Describe(FinishReason reason) => reason switch
    {
        FinishReason.StopToken => "stop token",
        FinishReason.MaxNewTokens => "--max-new reached",
        _ => "the model's sequence is full",
    };

    /// <summary>Decoded text written as tokens come: the decoding of every token so far,
    /// less what was written, held back while it ends in an incomplete UTF-8 character
    /// (U+FFFD).</summary>
    private sealed class TextStream(ModelTokenizer tokenizer, TextWriter output)
    {
        private readonly List<int> _tokens = [];
        private int _written;

        public int Count => _tokens.Count;

        public void Add(int token)
        {
            _tokens.Add(token);
            string text = tokenizer.Decode(_tokens);
            if (text.EndsWith('\uFFFD')) return;
            Write(text);
        }

        public void Finish()
        {
            Write(tokenizer.Decode(_tokens));
            output.WriteLine();
        }

        private void Write(string text)
        {
            if (text.Length <= _written) return;
            output.Write(text.AsSpan(_written));
            output.Flush();
            _written = text.Length;
        }
    }
}
