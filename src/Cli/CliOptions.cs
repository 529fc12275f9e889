using Managed.Kernels.Attention;
using Managed.Kernels.Devices;

namespace Managed.Cli;

/// <summary>Parsed command-line options.</summary>
internal sealed record CliOptions(DeviceKind Device, bool Large, int[] Seq, int[] Dim, int Heads,
    int Batch, string? Output, bool Variants = false, bool Reference = false,
    int QueryTile = 0, int KeyTile = 0, string? Only = null, int Part = 0, int Parts = 1)
{
    public static CliOptions Parse(string[] args)
    {
        var o = new CliOptions(DeviceKind.Host, false, [1024, 4096, 16384], [64, 128], 16, 1, null);
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i]
                : throw new ArgumentException($"option {args[i]} needs a value");
            o = args[i] switch
            {
                "--device" => o with { Device = ParseDevice(Next()) },
                "--large" => o with { Large = true },
                "--variants" => o with { Variants = true },
                "--reference" => o with { Reference = true },
                "--query-tile" => o with { QueryTile = int.Parse(Next()) },
                "--key-tile" => o with { KeyTile = int.Parse(Next()) },
                "--seq" => o with { Seq = Ints(Next()) },
                "--dim" => o with { Dim = Ints(Next()) },
                "--heads" => o with { Heads = int.Parse(Next()) },
                "--batch" => o with { Batch = int.Parse(Next()) },
                "--out" => o with { Output = Next() },
                "--only" => o with { Only = Next() },
                "--part" => ParsePart(o, Next()),
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        return o;
    }

    /// <summary>The CPU tuning the options ask for (defaults where not given).</summary>
    public AttentionTuning Tuning => new()
    {
        QueryTile = QueryTile > 0 ? QueryTile : AttentionTuning.Default.QueryTile,
        KeyTile = KeyTile > 0 ? KeyTile : AttentionTuning.Default.KeyTile,
    };

    /// <summary>--part K/N: every N-th variant from the K-th (0-based), so N processes share a check.</summary>
    private static CliOptions ParsePart(CliOptions o, string s)
    {
        var kn = Ints(s.Replace('/', ','));
        if (kn.Length != 2 || kn[1] < 1 || kn[0] < 0 || kn[0] >= kn[1])
            throw new ArgumentException($"--part expects K/N with 0 <= K < N, got '{s}'");
        return o with { Part = kn[0], Parts = kn[1] };
    }

    private static int[] Ints(string s) => s.Split(',').Select(int.Parse).ToArray();

    private static DeviceKind ParseDevice(string s) => s.ToLowerInvariant() switch
    {
        "auto" => DeviceKind.Auto,
        "cpu" or "host" => DeviceKind.Host,
        "cuda" => DeviceKind.Cuda,
        "opencl" => DeviceKind.OpenCL,
        "ilgpu-cpu" => DeviceKind.IlgpuCpu,
        _ => throw new ArgumentException($"unknown device '{s}' (auto, cpu, cuda, opencl, ilgpu-cpu)"),
    };
}
