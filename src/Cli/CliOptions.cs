using System.Globalization;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Matmul;
using Managed.Kernels.Registry;

namespace Managed.Cli;

/// <summary>A command-line mistake: reported as one "managed: error:" line, then the usage,
/// on stderr, exit 2. The message names the option, the value given and what was
/// expected.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>One GEMM of `bench --gemm`: y (M, N) = x (M, K) W^T.</summary>
internal readonly record struct GemmShape(int M, int N, int K)
{
    public override string ToString() => $"{M}x{N}x{K}";
}

/// <summary>Parsed command-line options (the defaults are <see cref="Default"/>).</summary>
internal sealed record CliOptions(DeviceKind Device, bool Large, int[] Seq, int[] Dim, int Heads,
    int Batch, string? Output, bool Variants = false, bool Reference = false,
    int QueryTile = 0, int KeyTile = 0, string? Only = null, int Part = 0, int Parts = 1,
    string? PtxOut = null, bool Probe = false,
    IReadOnlyList<VariantSpec>? VariantSpecs = null, bool Decode = false,
    int[]? Keys = null, int[]? Rows = null, int KvHeads = 8, DType[]? DTypes = null,
    int[]? Splits = null,
    string? Model = null, string? Ids = null, string? Prompt = null, string? Text = null,
    int? MaxNew = null, bool Greedy = false, float? Temperature = null, int? TopK = null,
    float? TopP = null, float? RepetitionPenalty = null, ulong? Seed = null,
    int[]? Stop = null, VariantSpec? Attention = null, int? Window = null, int? Stride = null,
    int[]? Batches = null, int? PromptTokens = null, int? NewTokens = null, int? Runs = null,
    string? RandomLlama = null, bool LinearAttention = false, int? Chunk = null,
    string? Plot = null, string? Replot = null, int? Threads = null, int TensorCoreRows = 0,
    AttentionPrecision[]? Precisions = null, int TensorCoreStages = 0,
    LinearPrecision[]? LinearPrecisions = null, bool Gemm = false,
    GemmShape[]? GemmShapes = null)
{
    /// <summary>What a command runs with when no option is given.</summary>
    public static CliOptions Default { get; } =
        new(DeviceKind.Host, false, [1024, 4096, 16384], [64, 128], 16, 1, null);

    /// <summary>The devices --device accepts, as the help and the errors spell them.</summary>
    public const string DeviceNames = "auto, cpu, cuda, opencl or ilgpu-cpu";

    /// <summary>The CPU tuning the options ask for (defaults where not given).</summary>
    public AttentionTuning Tuning => new()
    {
        QueryTile = QueryTile > 0 ? QueryTile
            : AttentionTuning.Default.QueryTile,
        KeyTile = KeyTile > 0 ? KeyTile : AttentionTuning.Default.KeyTile,
        TensorCoreRows = TensorCoreRows,
        TensorCoreStages = TensorCoreStages,
    };

    /// <summary>--part K/N: every N-th variant from the K-th (0-based), so N processes share a
    /// check.</summary>
    public static CliOptions ParsePart(CliOptions o, string s)
    {
        var kn = s.Split('/');
        if (kn.Length != 2 || !TryInt(kn[0], out int k) || !TryInt(kn[1], out int n)
            || n < 1 || k >= n)
            throw new UsageException($"--part '{s}' is invalid (expected K/N with 0 <= K < N, "
                + "e.g. 0/4)");
        return o with { Part = k, Parts = n };
    }

    /// <summary>An integer &gt;= 1 (a size, a count, a tile).</summary>
    public static int Positive(string option, string s) =>
        TryInt(s, out int n) && n >= 1 ? n
            : throw new UsageException(
                $"{option} '{s}' is not a positive integer (expected N >= 1)");

    /// <summary>A comma-separated list of integers &gt;= 1 (sequence lengths, head dims).</summary>
    public static int[] Positives(string option, string s)
    {
        var items = s.Split(',');
        var values = new int[items.Length];
        for (int i = 0; i < items.Length; i++)
        {
            if (!TryInt(items[i], out values[i]) || values[i] < 1)
                throw new UsageException(items.Length == 1
                    ? $"{option} '{s}' is not a positive integer "
                      + "(expected N or N1,N2,... with N >= 1)"
                    : $"{option} '{s}': '{items[i]}' is not a positive integer "
                      + "(expected N1,N2,... with every N >= 1)");
        }
        return values;
    }

    /// <summary>An integer &gt;= 0 (a count where 0 means none or off).</summary>
    public static int NonNegative(string option, string s) =>
        TryInt(s, out int n) ? n
            : throw new UsageException(
                $"{option} '{s}' is not a whole number (expected N >= 0)");

    /// <summary>A comma-separated list of integers &gt;= 0 (token ids).</summary>
    public static int[] NonNegatives(string option, string s)
    {
        var items = s.Split(',');
        var values = new int[items.Length];
        for (int i = 0; i < items.Length; i++)
            if (!TryInt(items[i], out values[i]))
                throw new UsageException($"{option} '{s}': '{items[i]}' is not a token id "
                    + "(expected ID or ID1,ID2,... with every ID >= 0)");
        return values;
    }

    /// <summary>A finite decimal number in [<paramref name="min"/>, <paramref name="max"/>]
    /// (the lower bound excluded when <paramref name="minExcluded"/>).</summary>
    public static float Number(string option, string s, float min, float max,
        bool minExcluded, string expected)
    {
        if (float.TryParse(s, NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent
                | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out float x)
            && float.IsFinite(x) && (minExcluded ? x > min : x >= min) && x <= max)
            return x;
        throw new UsageException($"{option} '{s}' is not a number in range (expected {expected})");
    }

    /// <summary>An unsigned 64-bit integer (a seed).</summary>
    public static ulong Seed64(string option, string s) =>
        ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong v) ? v
            : throw new UsageException(
                $"{option} '{s}' is not a seed (expected a whole number from 0 to 2^64 - 1)");

    /// <summary>--precision: exact, tf32, comma-separated (the arithmetic of fp32 Q/K/V).
    /// </summary>
    public static AttentionPrecision[] ParsePrecisions(string s) => s.Split(',')
        .Select(item => item switch
        {
            "exact" => AttentionPrecision.Exact,
            "tf32" => AttentionPrecision.Tf32,
            _ => throw new UsageException($"--precision '{s}': '{item}' is not a precision "
                + "(expected exact or tf32, comma-separated)"),
        }).ToArray();

    /// <summary>--precision's spelling of a precision.</summary>
    public static string NameOf(AttentionPrecision precision) =>
        precision == AttentionPrecision.Tf32 ? "tf32" : "exact";

    /// <summary>--linear-precision: exact, weight-type, comma-separated (the arithmetic of
    /// the linear layers, <see cref="LinearPrecision"/>).</summary>
    public static LinearPrecision[] ParseLinearPrecisions(string s) => s.Split(',')
        .Select(item => item switch
        {
            "exact" => LinearPrecision.Exact,
            "weight-type" => LinearPrecision.WeightType,
            _ => throw new UsageException($"--linear-precision '{s}': '{item}' is not a "
                + "precision (expected exact or weight-type, comma-separated)"),
        }).ToArray();

    /// <summary>--linear-precision's spelling of a precision.</summary>
    public static string NameOf(LinearPrecision precision) =>
        precision == LinearPrecision.WeightType ? "weight-type" : "exact";

    /// <summary>--gemm-shapes: MxNxK, comma-separated, each size &gt;= 1.</summary>
    public static GemmShape[] ParseGemmShapes(string s) => s.Split(',')
        .Select(item => item.Split('x') is [var m, var n, var k] && TryInt(m, out int mi)
            && TryInt(n, out int ni) && TryInt(k, out int ki) && mi >= 1 && ni >= 1 && ki >= 1
            ? new GemmShape(mi, ni, ki)
            : throw new UsageException($"--gemm-shapes '{s}': '{item}' is not a shape "
                + "(expected MxNxK with sizes >= 1, comma-separated, e.g. 4096x4096x4096)"))
        .ToArray();

    /// <summary>The device named by --device.</summary>
    public static DeviceKind ParseDevice(string s) => s.ToLowerInvariant() switch
    {
        "auto" => DeviceKind.Auto,
        "cpu" or "host" => DeviceKind.Host,
        "cuda" => DeviceKind.Cuda,
        "opencl" => DeviceKind.OpenCL,
        "ilgpu-cpu" => DeviceKind.IlgpuCpu,
        _ => throw new UsageException($"--device '{s}' is not a device (expected {DeviceNames})"),
    };

    // Digits only: no sign, no spaces, no thousands separators; overflow is not a number.
    private static bool TryInt(string s, out int value) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
