using System.Text;
using Managed.Kernels.Attention;

namespace Managed.Cli;

/// <summary>
/// One option of a command: its name, the placeholder of its value (null for a flag), what a
/// value must be (for the errors), what it does and its default (for the help), and how it
/// sets <see cref="CliOptions"/>; <see cref="Apply"/> throws <see cref="UsageException"/> on a
/// bad value.
/// </summary>
internal sealed record CliOption(string Name, string? Value, string Expected, string Help,
    string Default, Func<CliOptions, string, CliOptions> Apply)
{
    /// <summary>A flag: no value, off by default.</summary>
    public static CliOption Flag(string name, string help, Func<CliOptions, CliOptions> set) =>
        new(name, null, "", help, "off", (o, _) => set(o));
}

/// <summary>
/// A command of the front end: its options (the only ones it accepts), its help and usage,
/// and what it runs. <see cref="All"/> is the command table; options are parsed here, by hand:
/// every mistake is a <see cref="UsageException"/> that names the option and the value.
/// </summary>
internal sealed record CliCommand(string Name, string Summary, string Description,
    CliOption[] Options, Func<CliOptions, CliContext, int> Run)
{
    private const int Width = 100, HelpColumn = 22;

    private static readonly CliOption Device = new("--device", "KIND", CliOptions.DeviceNames,
        $"the device: {CliOptions.DeviceNames}; auto is CUDA, else OpenCL, else cpu", "cpu",
        (o, s) => o with { Device = CliOptions.ParseDevice(s) });

    private static readonly CliOption DTypeOption = new("--dtype", "T1,T2,...",
        DTypeOps.Expected,
        "Q, K and V storage (--decode: the cache's), each type in turn, with a column for it "
        + "in the CSV; half and bfloat16 run on the tensor cores of a CUDA device where the "
        + "kernels take them there; with --variants or --variant, the variant table in each "
        + "type", "--decode: float,half,bfloat16; else float",
        (o, s) => o with { DTypes = DTypeOps.Parse("--dtype", s) });

    private static readonly CliOption Model = new("--model", "DIR",
        "a Hugging Face model folder", "the model: a folder with config.json, "
        + "model.safetensors and the tokenizer files (vocab.json + merges.txt or "
        + "tokenizer.model)", ShippedModel.RelativePath, (o, s) => o with { Model = s });

    private static readonly CliOption Attention = new("--attention", "SPEC",
        "a variant spec: " + VariantSpecParser.Forms,
        "run the model with this attention instead of its own (registry vocabulary: "
        + VariantSpecParser.Forms + "; e.g. sink4-window256)", "the model's own, exact",
        (o, s) => o with { Attention = VariantSpecParser.Parse("--attention", s) });

    private static readonly CliOption LinearPrecisionOption = new("--linear-precision",
        "P1,P2,...", "exact or weight-type, comma-separated (generate: one)",
        "the arithmetic of the linear layers: exact (fp32), or weight-type (prefill and "
        + "--gemm on a CUDA device with half/bfloat16 weights: x rounded to the weights' type, "
        + "the tensor cores, fp32 accumulation); bench --model and --gemm: each in turn",
        "exact", (o, s) => o with { LinearPrecisions = CliOptions.ParseLinearPrecisions(s) });

    /// <summary>generate, perplexity, forward, check, bench and devices.</summary>
    public static IReadOnlyList<CliCommand> All { get; } =
    [
        new("generate", "generate text (or token ids) from a model; no option: the shipped one",
            "Generates after a prompt and prints as it goes: with --prompt (or no prompt "
            + $"option: \"{GenerateCommand.DefaultPrompt}\") the prompt, then the text; with --ids "
            + "the generated token ids on one line. The prompt is prefilled, then one token "
            + "at a time is chosen by repetition penalty, temperature, top-k and top-p (HF's "
            + "order) or argmax with --greedy, until an eos or --stop id or --max-new tokens. "
            + "Tokens/s go to stderr.",
            [
                Model,
                new("--prompt", "TEXT", "text", "the prompt, tokenized with the model's "
                    + "tokenizer (bos first where the model adds one)",
                    $"\"{GenerateCommand.DefaultPrompt}\"", (o, s) => o with { Prompt = s }),
                new("--ids", "FILE", "a file path", "the prompt as whitespace-separated token "
                    + "ids; prints the generated ids instead of text", "none",
                    (o, s) => o with { Ids = s }),
                new("--max-new", "N", "N >= 0", "most tokens to generate",
                    $"{GenerateCommand.DefaultMaxNew}",
                    (o, s) => o with { MaxNew = CliOptions.NonNegative("--max-new", s) }),
                CliOption.Flag("--greedy", "argmax instead of sampling (repetition "
                    + "penalty 1 unless --repetition-penalty is given)",
                    o => o with { Greedy = true }),
                new("--temperature", "T", "T >= 0", "divide the logits by T (0 = greedy)",
                    $"{GenerateCommand.DefaultSampling.Temperature}",
                    (o, s) => o with
                    {
                        Temperature = CliOptions.Number("--temperature", s, 0, float.MaxValue,
                            false, "T >= 0"),
                    }),
                new("--top-k", "K", "K >= 0", "keep the K most likely tokens (0 = all)",
                    $"{GenerateCommand.DefaultSampling.TopK}",
                    (o, s) => o with { TopK = CliOptions.NonNegative("--top-k", s) }),
                new("--top-p", "P", "0 < P <= 1", "keep the most likely tokens whose "
                    + "probabilities add up to P (1 = all)",
                    $"{GenerateCommand.DefaultSampling.TopP}",
                    (o, s) => o with
                    {
                        TopP = CliOptions.Number("--top-p", s, 0, 1, true, "0 < P <= 1"),
                    }),
                new("--repetition-penalty", "R", "R > 0", "divide positive (multiply "
                    + "negative) logits of tokens already in the text by R (1 = off)",
                    $"{GenerateCommand.DefaultSampling.RepetitionPenalty}",
                    (o, s) => o with
                    {
                        RepetitionPenalty = CliOptions.Number("--repetition-penalty", s, 0,
                            float.MaxValue, true, "R > 0"),
                    }),
                new("--seed", "S", "0 <= S < 2^64", "the random seed (xoshiro256**)",
                    $"{GenerateCommand.DefaultSampling.Seed}",
                    (o, s) => o with { Seed = CliOptions.Seed64("--seed", s) }),
                new("--stop", "ID1,ID2,...", "token ids >= 0", "also stop at these token "
                    + "ids", "the model's eos ids only",
                    (o, s) => o with { Stop = CliOptions.NonNegatives("--stop", s) }),
                Attention,
                LinearPrecisionOption,
                Device,
            ],
            (o, c) => GenerateCommand.Run(o, c)),
        new("perplexity", "perplexity of a text file, exact attention beside --attention's",
            "Tokenizes FILE with the model's tokenizer and prints the perplexity of the tokens "
            + "under the model with its own (exact) attention and, with --attention, under "
            + "that variant beside it: windows of --window tokens moved by --stride, every "
            + "token scored once (Hugging Face's recipe). A progress bar goes to stderr.",
            [
                Model,
                new("--text", "FILE", "a file path", "the text to score (UTF-8)", "none, "
                    + "required", (o, s) => o with { Text = s }),
                Attention,
                new("--window", "N", "N >= 2", "tokens per window (the most context)",
                    "the model's sequence length",
                    (o, s) => o with { Window = CliOptions.Positive("--window", s) }),
                new("--stride", "N", "N >= 1", "tokens a window moves by", "the window",
                    (o, s) => o with { Stride = CliOptions.Positive("--stride", s) }),
                Device,
            ],
            (o, c) => PerplexityCommand.Run(o, c)),
        new("forward", "logits of every position of a token id file, as raw float32",
            "Runs the model over the token ids in --ids (whitespace-separated) and writes the "
            + "logits of every position to --out as raw little-endian float32, row-major "
            + "[tokens, vocab].",
            [
                Model,
                new("--ids", "FILE", "a file path", "the token ids, whitespace-separated",
                    "none, required", (o, s) => o with { Ids = s }),
                new("--out", "FILE", "a file path", "the logits file to write",
                    "none, required", (o, s) => o with { Output = s }),
                Attention,
                Device,
            ],
            (o, c) => ForwardCommand.Run(o, c)),
        new("check", "run every registered variant on a device against the fp64 reference",
            "Runs every registered variant (or those --only and --part select) on a set of shapes "
            + "and compares it with the fp64 reference: one row per (variant, shape), then "
            + "'variants: <n> checked, <f> failed, worst error <e>'; with --dtype, the same in "
            + "each storage type ('variants (bfloat16): ...'). With the whole registry (no --only, "
            + "part 0) the other checks follow. Exits 1 if any fails, 2 if the options select no "
            + "variant.",
            [
                Device,
                CliOption.Flag("--large", "add long sequences (N up to 8192, D up to 256)",
                    o => o with { Large = true }),
                new("--only", "TEXT", "text contained in a variant name",
                    "only the variants whose name contains TEXT (case-sensitive); an error if "
                    + "none does", "every variant", (o, s) => o with { Only = s }),
                new("--part", "K/N", "K/N with 0 <= K < N",
                    "only registry entries K, K+N, K+2N, ... (0 <= K < N), to split a check over "
                    + "N processes", "0/1", CliOptions.ParsePart),
                new("--dtype", "T1,T2,...", DTypeOps.Expected,
                    "Q, K and V stored as each type in turn: the variant table on inputs "
                    + "rounded to it, against the fp64 reference on the rounded values "
                    + "('variants (half): <n> checked, <f> failed, worst error <e>'), then exact "
                    + "attention's 16-bit prefill cases in that type (the tensor cores on CUDA); "
                    + "float runs the fp32 table and the layout, decode, policy, linear and "
                    + "mechanism checks, and with no 16-bit type also the 16-bit prefill cases",
                    "float", (o, s) => o with { DTypes = DTypeOps.Parse("--dtype", s) }),
                new("--precision", "P1,P2,...", "exact or tf32, comma-separated",
                    "instead: only exact attention over fp32 Q/K/V at these precisions (tf32: "
                    + "the TF32 tensor-core prefill on CUDA, every layout) against fp64 within "
                    + "each one's bound, 'prefill-fp32: <n> checked, <f> failed'", "none",
                    (o, s) => o with { Precisions = CliOptions.ParsePrecisions(s) }),
            ],
            (o, c) => CheckCommand.Run(o, c.Out)),
        new("bench", "time exact attention (TFLOP/s), or FlexAttention-style variants",
            "Times dense and causal exact attention for every --dim and --seq (median ms of "
            + "repeated calls after a warm-up) and prints ms and TFLOP/s. With --variants (or "
            + "--variant SPEC): "
            + "FlexAttention-style variants, TFLOP/s on attended pairs and the speed-up over "
            + "dense causal of the same shape. With --model DIR: a model's time to first token, "
            + "prefill and decode tokens/s and the share of the bandwidth bound; with "
            + "--random-llama-1b DIR: write a random 1.1 B Llama checkpoint to bench.",
            [
                Device,
                new("--seq", "N1,N2,...", "N1,N2,... with N >= 1", "sequence lengths",
                    "1024,4096,16384", (o, s) => o with { Seq = CliOptions.Positives("--seq", s) }),
                new("--dim", "D1,D2,...", "D1,D2,... with D >= 1", "head dims", "64,128",
                    (o, s) => o with { Dim = CliOptions.Positives("--dim", s) }),
                new("--heads", "H", "H >= 1", "heads", "16",
                    (o, s) => o with { Heads = CliOptions.Positive("--heads", s) }),
                new("--batch", "B", "B >= 1 (B1,B2,... with --model)",
                    "batch size (--model: a list of them)", "1", (o, s) =>
                    {
                        int[] b = CliOptions.Positives("--batch", s);
                        return o with { Batch = b[0], Batches = b };
                    }),
                CliOption.Flag("--variants", "time FlexAttention-style variants instead "
                    + "(causal, sliding window, sinks, documents, softcap, ALiBi; NATTEN 2-D "
                    + "at N = 3136)", o => o with { Variants = true }),
                new("--variant", "SPEC", "a variant spec: " + VariantSpecParser.Forms,
                    "time the variants SPEC names (repeatable, or SPEC1,SPEC2,...), after dense "
                    + "causal, like --variants; SPEC: " + VariantSpecParser.Forms
                    + "; e.g. sink4-window256 or softcap-30-causal", "none",
                    (o, s) => o with
                    {
                        VariantSpecs = [.. o.VariantSpecs ?? [],
                            .. VariantSpecParser.ParseList("--variant", s)],
                    }),
                CliOption.Flag("--reference", "time the fp64 reference instead (one call, "
                    + "for scale)", o => o with { Reference = true }),
                new("--query-tile", "N", "N >= 1", "CPU kernel: query rows per tile",
                    $"{AttentionTuning.Default.QueryTile}",
                    (o, s) => o with { QueryTile = CliOptions.Positive("--query-tile", s) }),
                new("--tc-rows", "N", "64 or 128", "tensor-core prefill (CUDA, fp16/bf16/tf32): "
                    + "query rows per group; --gemm weight-type: rows (and columns) of y per "
                    + "group", "fp16/bf16: 64 up to head dim 128, 128 above; "
                    + "tf32: 64 up to 64, 128 above (FlashAttention.Tf32Layout)",
                    (o, s) => o with { TensorCoreRows = CliOptions.Positive("--tc-rows", s) is
                        var r and (64 or 128) ? r
                        : throw new UsageException($"--tc-rows '{s}': expected 64 or 128") }),
                new("--tc-stages", "N", "1 or 2", "TF32 prefill (CUDA, --precision tf32): "
                    + "stages of K and V tiles in shared memory", "by the dims",
                    (o, s) => o with { TensorCoreStages = CliOptions.Positive("--tc-stages", s)
                        is var n and (1 or 2) ? n
                        : throw new UsageException($"--tc-stages '{s}': expected 1 or 2") }),
                new("--key-tile", "N", "N >= 1", "CPU kernel: keys per tile, a multiple of 16",
                    $"{AttentionTuning.Default.KeyTile}",
                    (o, s) => o with { KeyTile = CliOptions.Positive("--key-tile", s) }),
                CliOption.Flag("--decode", "time decode over KV caches instead (GB/s of K and V "
                    + "read, against the copy bandwidth measured in the same run)",
                    o => o with { Decode = true }),
                CliOption.Flag("--linear", "time causal linear attention instead (the chunked "
                    + "kernel over elu+1 features, F = D): ms and microseconds per token for every "
                    + "--seq, beside our exact causal kernel on the same shape, and the length "
                    + "where linear overtakes exact", o => o with { LinearAttention = true }),
                new("--chunk", "C", "C >= 1 (at most 64 on an ILGPU device)",
                    "--linear: tokens per chunk", "the device's default",
                    (o, s) => o with { Chunk = CliOptions.Positive("--chunk", s) }),
                new("--plot", "FILE", "a .png path", "--linear: also draw microseconds per token "
                    + "against N (linear and exact causal, each D, log scales) to FILE", "none",
                    (o, s) => o with { Plot = s }),
                new("--replot", "CSV", "a CSV an earlier --linear run wrote with --out",
                    "--linear --plot: draw the plot from CSV instead of timing (for runs on a "
                    + "machine without fonts, whose PNG has no text)", "none",
                    (o, s) => o with { Replot = s }),
                new("--keys", "N1,N2,...", "N1,N2,... with N >= 1", "--decode: keys per sequence",
                    "8192,32768,131072", (o, s) => o with { Keys = CliOptions.Positives("--keys", s) }),
                new("--rows", "R1,R2,...", "R1,R2,... with 1 <= R <= 16",
                    "--decode: query rows per sequence", "1,4",
                    (o, s) => o with { Rows = CliOptions.Positives("--rows", s) }),
                new("--splits", "S1,S2,...", "S1,S2,... with S >= 1",
                    "--decode: parts each (sequence, KV head) is split into (tuning; default "
                    + "the documented rule)", "the rule",
                    (o, s) => o with { Splits = CliOptions.Positives("--splits", s) }),
                new("--kv-heads", "H", "H >= 1 dividing --heads", "--decode: KV heads", "8",
                    (o, s) => o with { KvHeads = CliOptions.Positive("--kv-heads", s) }),
                DTypeOption,
                new("--storage", "T1,T2,...", DTypeOps.Expected, "the older name of --dtype",
                    "as --dtype", (o, s) => o with { DTypes = DTypeOps.Parse("--storage", s) }),
                new("--precision", "P1,P2,...", "exact or tf32, comma-separated",
                    "exact attention: the arithmetic of fp32 Q/K/V, each in turn (tf32: the "
                    + "TF32 tensor-core prefill on a CUDA device; a precision column in the CSV)",
                    "exact", (o, s) => o with { Precisions = CliOptions.ParsePrecisions(s) }),
                new("--model", "DIR", "a Hugging Face model folder", "time generation "
                    + "with this model instead: time to first token, prefill and decode "
                    + "tokens/s for every --batch, against the bandwidth bound (weights and KV "
                    + "cache read per step / the bandwidth measured in the same run)", "none",
                    (o, s) => o with { Model = s }),
                LinearPrecisionOption,
                CliOption.Flag("--gemm", "time the linear layer's GEMM instead, y = x W^T "
                    + "(x fp32, W in each --dtype, default bfloat16) for every --gemm-shapes "
                    + "and --linear-precision: TFLOP/s, pipelined calls between syncs, and a "
                    + "check of sampled outputs against fp64 within the documented bound",
                    o => o with { Gemm = true }),
                new("--gemm-shapes", "MxNxK,...", "MxNxK,... with sizes >= 1",
                    "--gemm: the shapes (m rows of x, n outputs, k inputs)", "4096x4096x4096",
                    (o, s) => o with { GemmShapes = CliOptions.ParseGemmShapes(s) }),
                new("--prompt-tokens", "N", "N >= 1", "--model: random prompt ids per sequence",
                    "128", (o, s) => o with
                    {
                        PromptTokens = CliOptions.Positive("--prompt-tokens", s),
                    }),
                new("--new-tokens", "N", "N >= 2", "--model: greedy new tokens per sequence "
                    + "(the first from the prefill)", "128",
                    (o, s) => o with { NewTokens = CliOptions.Positive("--new-tokens", s) }),
                new("--runs", "N", "N >= 1", "--model: timed generations after a warm-up "
                    + "(medians)", "3",
                    (o, s) => o with { Runs = CliOptions.Positive("--runs", s) }),
                new("--threads", "N", "N >= 1", "--model on the CPU: threads of the model's "
                    + "calls (the bandwidth probe still uses all)", "all processors",
                    (o, s) => o with { Threads = CliOptions.Positive("--threads", s) }),
                new("--random-llama-1b", "DIR", "a folder path", "write a random-initialized "
                    + "Llama-shaped checkpoint of 1.1 B parameters in bf16 (TinyLlama's shape) "
                    + "to DIR in Hugging Face format, then exit", "none",
                    (o, s) => o with { RandomLlama = s }),
                new("--out", "FILE", "a file path", "also write the results as CSV to FILE",
                    "none", (o, s) => o with { Output = s }),
            ],
            (o, c) => o switch
            {
                { RandomLlama: not null, Model: not null } => throw new UsageException(
                    "--random-llama-1b cannot be combined with --model (write the checkpoint, "
                    + "then bench it with --model DIR)"),
                { RandomLlama: not null } => RandomLlama.Write(o.RandomLlama, c.Out) > 0 ? 0 : 1,
                { DTypes: not null, Model: not null } or { DTypes: not null, Reference: true }
                    or { DTypes: not null, LinearAttention: true } => throw new UsageException(
                    "--dtype (--storage) cannot be combined with --model, --reference or "
                    + "--linear (they run in float)"),
                { Precisions: not null, Model: not null } or { Precisions: not null, Decode: true }
                    or { Precisions: not null, LinearAttention: true }
                    or { Precisions: not null, Variants: true }
                    or { Precisions: not null, VariantSpecs: not null }
                    or { Precisions: not null, Reference: true } => throw new UsageException(
                    "--precision times exact attention only: it cannot be combined with "
                    + "--model, --decode, --linear, --variants, --variant or --reference"),
                { Model: not null, Decode: true } or { Model: not null, Variants: true }
                    or { Model: not null, VariantSpecs: not null }
                    or { Model: not null, Reference: true } => throw new UsageException(
                    "--model cannot be combined with --decode, --variants, --variant or "
                    + "--reference"),
                { Gemm: true, Model: not null } => throw new UsageException(
                    "--gemm cannot be combined with --model (bench --model times the model, "
                    + "--gemm its GEMMs alone)"),
                { Model: not null } => ModelBench.Run(o, c),
                { Gemm: true, Decode: true } or { Gemm: true, LinearAttention: true }
                    or { Gemm: true, Variants: true } or { Gemm: true, VariantSpecs: not null }
                    or { Gemm: true, Reference: true } or { Gemm: true, Precisions: not null }
                    => throw new UsageException("--gemm cannot be combined with --decode, "
                    + "--linear, --variants, --variant, --reference or --precision"),
                { Gemm: true } => GemmBench.Run(o, c.Out),
                { LinearPrecisions: not null } => throw new UsageException(
                    "--linear-precision applies to --model and --gemm only"),
                { GemmShapes: not null } => throw new UsageException(
                    "--gemm-shapes needs --gemm"),
                { Batches.Length: > 1 } => throw new UsageException(
                    "--batch takes one size except with --model"),
                { Decode: true, LinearAttention: true } => throw new UsageException(
                    "--decode cannot be combined with --linear"),
                { Decode: true, Variants: true } or { Decode: true, VariantSpecs: not null }
                    or { Decode: true, Reference: true } => throw new UsageException(
                    "--decode cannot be combined with --variants, --variant or --reference"),
                { Decode: true } => DecodeBench.Run(o, c.Out),
                { LinearAttention: true, Variants: true } or { LinearAttention: true, VariantSpecs: not null }
                    or { LinearAttention: true, Reference: true } => throw new UsageException(
                    "--linear cannot be combined with --variants, --variant or --reference"),
                { LinearAttention: false, Plot: not null } => throw new UsageException(
                    "--plot draws the --linear bench only"),
                { Replot: not null, LinearAttention: false } or { Replot: not null, Plot: null }
                    => throw new UsageException("--replot needs --linear and --plot FILE"),
                { LinearAttention: true } => LinearBench.Run(o, c.Out),
                { Variants: true, VariantSpecs: not null } => throw new UsageException(
                    "--variants cannot be combined with --variant (--variants times the default "
                    + "table, --variant the specs given)"),
                { Variants: true, Reference: true } => throw new UsageException(
                    "--reference cannot be combined with --variants (the variants bench times "
                    + "the kernels only)"),
                { VariantSpecs: not null, Reference: true } => throw new UsageException(
                    "--reference cannot be combined with --variant (the variants bench times "
                    + "the kernels only)"),
                { Variants: true } or { VariantSpecs: not null } => VariantBench.Run(o, c.Out),
                _ => BenchCommand.Run(o, c.Out),
            }),
        new("devices", "list the devices; --ptx-out DIR also writes every variant's PTX",
            "Lists the devices: the host CPU and the ILGPU ones (CUDA, OpenCL, ILGPU's CPU "
            + "accelerator). With --ptx-out DIR it also compiles every registered variant to PTX "
            + "(head dims 64, 128 and 256; no GPU needed) into DIR, created if missing; without "
            + "it no file is written. --probe runs one small call per device object.",
            [
                new("--ptx-out", "DIR", "a folder path",
                    "also write every variant's PTX into DIR", "none, no files written",
                    (o, s) => o with { PtxOut = s }),
                CliOption.Flag("--probe", "open each ILGPU device twice and time one small "
                    + "attention call on each: the first compiles the kernel, the second device "
                    + "object only loads it", o => o with { Probe = true }),
            ],
            (o, c) => DevicesCommand.Run(o.PtxOut, o.Probe, c.Out)),
    ];

    /// <summary>The usage of the front end as a whole.</summary>
    public static string TopUsage =>
        $"usage: managed <{string.Join('|', All.Select(c => c.Name))}> [options]";

    /// <summary>`managed --help`: the commands, then each command's help.</summary>
    public static string TopHelp
    {
        get
        {
            var text = new StringBuilder();
            text.AppendLine(TopUsage).AppendLine().AppendLine("commands:");
            foreach (var c in All) text.AppendLine($"  {c.Name,-12}{c.Summary}");
            text.AppendLine("  -h, --help  show this help; 'managed <command> --help' shows one "
                + "command's");
            foreach (var c in All) text.AppendLine().Append(c.Help);
            return text.ToString();
        }
    }

    /// <summary>The command called <paramref name="name"/>, or null.</summary>
    public static CliCommand? Find(string name) => All.FirstOrDefault(c => c.Name == name);

    /// <summary>True for -h and --help, which win over every other argument.</summary>
    public static bool IsHelp(string arg) => arg is "-h" or "--help";

    /// <summary>"usage: managed check [--device KIND] ...", wrapped.</summary>
    public string Usage
    {
        get
        {
            string head = $"usage: managed {Name} ";
            var words = Options
                .Select(o => o.Value is null ? $"[{o.Name}]" : $"[{o.Name} {o.Value}]")
                .Append("[-h|--help]");
            return Wrap(head, string.Join(' ', words));
        }
    }

    /// <summary>`managed NAME --help`: usage, description, every option with its default.</summary>
    public string Help
    {
        get
        {
            var text = new StringBuilder();
            text.AppendLine(Usage).AppendLine().AppendLine(Wrap("", Description)).AppendLine()
                .AppendLine("options:");
            foreach (var o in Options)
            {
                string name = $"  {o.Name}{(o.Value is null ? "" : " " + o.Value)}";
                text.AppendLine(Wrap(name.Length < HelpColumn ? name.PadRight(HelpColumn)
                    : name + " ",
                    $"{o.Help} (default: {o.Default})"));
            }
            text.AppendLine($"{"  -h, --help",-HelpColumn}show this help");
            return text.ToString();
        }
    }

    /// <summary>The options in <paramref name="args"/> (after the command name): --name VALUE,
    /// --name=VALUE or a flag; a value may not start with "--" (that is a missing value).</summary>
    public CliOptions Parse(IReadOnlyList<string> args)
    {
        var options = CliOptions.Default;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith('-'))
                throw new UsageException($"{Name}: unexpected argument '{arg}' (expected options "
                    + $"only: {OptionNames})");
            int eq = arg.IndexOf('=');
            string name = eq > 0 ? arg[..eq] : arg;
            var option = Options.FirstOrDefault(o => o.Name == name)
                ?? throw new UsageException($"{Name}: unknown option '{name}' (expected "
                    + $"{OptionNames})");
            string value;
            if (option.Value is null)
            {
                if (eq > 0)
                    throw new UsageException($"{name} takes no value, got '{arg[(eq + 1)..]}'");
                value = "";
            }
            else if (eq > 0)
                value = arg[(eq + 1)..];
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
                value = args[++i];
            else
                throw new UsageException($"{name} needs a value {option.Value} "
                    + $"(expected {option.Expected})");
            if (option.Value is not null && value.Length == 0)
                throw new UsageException($"{name} needs a value {option.Value}, got '' "
                    + $"(expected {option.Expected})");
            options = option.Apply(options, value);
        }
        return options;
    }

    private string OptionNames => string.Join(", ", Options.Select(o => o.Name)) + " or --help";

    // Greedy word wrap at Width: the prefix verbatim, continuation lines indented as deep.
    private static string Wrap(string prefix, string body)
    {
        var lines = new StringBuilder();
        var line = new StringBuilder(prefix);
        bool empty = true;
        foreach (string word in body.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!empty && line.Length + 1 + word.Length > Width)
            {
                lines.AppendLine(line.ToString());
                line.Clear().Append(' ', prefix.Length);
                empty = true;
            }
            if (!empty) line.Append(' ');
            line.Append(word);
            empty = false;
        }
        return lines.Append(line).ToString();
    }
}
