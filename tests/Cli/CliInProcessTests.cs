using Managed.Cli;
using Managed.Kernels.Variants;
using Xunit;
using Managed.Kernels.Registry;

namespace Managed.Tests.Cli;

/// <summary>
/// The dispatch called in-process (<see cref="CliApp.Run"/>): it writes to the writers it is
/// given and nowhere else, so output can be checked without a process, and a valid command
/// runs to the end with exit 0.
/// </summary>
public sealed class CliInProcessTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = CliApp.Run(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Theory]
    [MemberData(nameof(CliProcessTests.UsageErrors), MemberType = typeof(CliProcessTests))]
    public void UsageErrorIsOneLineThenUsageWithExit2(string[] args, string[] named)
    {
        var (exit, stdout, stderr) = Run(args);
        CliAssert.UsageError(exit, stdout, stderr, named);
    }

    /// <summary>--reference would be ignored by the variants bench: refused, not dropped.</summary>
    [Fact]
    public void BenchVariantsWithReferenceIsAUsageError()
    {
        var (exit, stdout, stderr) = Run("bench", "--variants", "--reference");
        CliAssert.UsageError(exit, stdout, stderr, ["--reference", "--variants"]);
    }

    /// <summary>--part that leaves none of the variants --only matches is an error too.</summary>
    [Fact]
    public void CheckPartSelectingNothingFails()
    {
        int index = VariantRegistry.All.Select(v => v.Name).ToList().IndexOf("causal-window-32");
        string part = $"{(index + 1) % 2}/2";   // the other half of the registry
        var (exit, stdout, stderr) = Run("check", "--only", "causal-window-32", "--part", part);
        CliAssert.UsageError(exit, stdout, stderr, ["--part", part]);
    }

    /// <summary>--plot draws the linear bench only: refused elsewhere, not dropped.</summary>
    [Fact]
    public void PlotWithoutLinearIsAUsageError()
    {
        var (exit, stdout, stderr) = Run("bench", "--plot", "x.png");
        CliAssert.UsageError(exit, stdout, stderr, ["--plot", "--linear"]);
    }

    /// <summary>bench --linear --plot writes a PNG with a line per series.</summary>
    [Fact]
    public void LinearBenchWritesThePlot()
    {
        string path = Path.Combine(Path.GetTempPath(), $"managed-plot-{Guid.NewGuid():N}.png");
        try
        {
            var (exit, stdout, _) = Run("bench", "--linear", "--seq", "64,128", "--dim", "8",
                "--heads", "1", "--plot", path);
            Assert.Equal(0, exit);
            Assert.Contains($"plot: {path}", stdout);
            var bytes = File.ReadAllBytes(path);
            Assert.True(bytes.Length > 1000, $"{bytes.Length} bytes");
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>--replot draws the same plot from the CSV a --linear run wrote; without
    /// --plot, or from a file that is not such a CSV, it is a usage error.</summary>
    [Fact]
    public void LinearBenchReplotsItsCsv()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"managed-replot-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string csv = Path.Combine(dir, "linear.csv"), png = Path.Combine(dir, "re.png");
            Assert.Equal(0, Run("bench", "--linear", "--seq", "64,128", "--dim", "8", "--heads",
                "1", "--out", csv).Exit);
            Assert.EndsWith(",device", File.ReadLines(csv).First());
            var (exit, stdout, _) = Run("bench", "--linear", "--replot", csv, "--plot", png);
            Assert.Equal(0, exit);
            Assert.Contains($"plot: {png}", stdout);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' },
                File.ReadAllBytes(png)[..4]);
            Assert.Equal(2, Run("bench", "--linear", "--replot", csv).Exit);
            File.WriteAllText(Path.Combine(dir, "bad.csv"), "a,b\n1,2\n");
            var bad = Run("bench", "--linear", "--replot", Path.Combine(dir, "bad.csv"), "--plot",
                png);
            Assert.Equal(2, bad.Exit);
            Assert.Contains("not a CSV of bench --linear", bad.Err);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void HelpGoesToTheStdoutWriter()
    {
        var (exit, stdout, stderr) = Run("check", "--only", "x", "-h");
        Assert.Equal(0, exit);
        Assert.Equal("", stderr);
        Assert.StartsWith("usage: managed check", stdout);
        Assert.Contains("(default: cpu)", stdout);
    }

    /// <summary>A quick valid run on the host: one variant (every shape of the check, all
    /// small), written to the stdout writer, exit 0.</summary>
    [Fact]
    public void CheckOfOneVariantOnTheHostPasses()
    {
        var (exit, stdout, stderr) = Run("check", "--only", "causal-window-32", "--device", "cpu");
        Assert.Equal("", stderr);
        Assert.Contains("variants: 8 checked, 0 failed", stdout);
        Assert.Equal(0, exit);
    }

    /// <summary>check --dtype: the variant table in bf16 (every shape of the check, one
    /// variant), with its summary line, exit 0; the aliases name the same types.</summary>
    [Fact]
    public void CheckInBFloat16OfOneVariantOnTheHostPasses()
    {
        var (exit, stdout, stderr) = Run("check", "--dtype", "bf16", "--only", "causal-window-32",
            "--device", "cpu");
        Assert.Equal("", stderr);
        Assert.Contains("variants (bfloat16): 8 checked, 0 failed, worst error ", stdout);
        Assert.DoesNotContain("variants:", stdout);   // no fp32 table unless asked for
        Assert.Equal(0, exit);
        var both = Run("check", "--dtype", "fp16,float", "--only", "causal-window-32");
        Assert.Contains("variants (half): 8 checked, 0 failed", both.Out);
        Assert.Contains("variants: 8 checked, 0 failed", both.Out);
        Assert.Equal(0, both.Exit);
    }

    /// <summary>bench --variants --dtype: the table in each type, the CSV with a dtype column.
    /// </summary>
    [Fact]
    public void VariantBenchInHalfAndBFloat16WritesTheDtypeColumn()
    {
        string csv = Path.Combine(Path.GetTempPath(), $"managed-vb-{Guid.NewGuid():N}.csv");
        try
        {
            var (exit, _, stderr) = Run("bench", "--dtype", "half,bf16", "--seq",
                "64", "--dim", "16", "--heads", "1", "--variant", "softcap-30-causal", "--out",
                csv);
            Assert.Equal("", stderr);
            Assert.Equal(0, exit);
            var lines = File.ReadAllLines(csv);
            Assert.EndsWith(",dtype", lines[0]);
            Assert.Equal(["causal,half", "softcap-30-causal,half", "causal,bfloat16",
                    "softcap-30-causal,bfloat16"],
                lines[1..].Select(l => l.Split(',') is var f ? $"{f[0]},{f[^1]}" : ""));
        }
        finally
        {
            File.Delete(csv);
        }
    }

    /// <summary>bench --precision: exact attention at each precision in turn, the CSV with a
    /// precision column (on the host Tf32 runs the exact kernel).</summary>
    [Fact]
    public void BenchAtBothPrecisionsWritesThePrecisionColumn()
    {
        string csv = Path.Combine(Path.GetTempPath(), $"managed-tf32-{Guid.NewGuid():N}.csv");
        try
        {
            var (exit, stdout, stderr) = Run("bench", "--precision", "exact,tf32", "--seq", "64",
                "--dim", "16", "--heads", "1", "--out", csv);
            Assert.Equal("", stderr);
            Assert.Equal(0, exit);
            Assert.Contains("tf32 B=1 Hq=1", stdout);
            var lines = File.ReadAllLines(csv);
            Assert.EndsWith(",precision", lines[0]);
            Assert.Equal(["exact", "exact", "tf32", "tf32"],
                lines[1..].Select(l => l.Split(',')[^1]));
        }
        finally
        {
            File.Delete(csv);
        }
    }

    /// <summary>bench --gemm: each shape at each linear precision, checked against fp64
    /// (on the host weight-type runs the exact kernels), the CSV with a precision column.
    /// </summary>
    [Fact]
    public void GemmBenchChecksAndWritesEveryPrecision()
    {
        string csv = Path.Combine(Path.GetTempPath(), $"managed-gemm-{Guid.NewGuid():N}.csv");
        try
        {
            var (exit, stdout, stderr) = Run("bench", "--gemm", "--gemm-shapes",
                "9x10x16,17x3x40", "--linear-precision", "exact,weight-type", "--out", csv);
            Assert.Equal("", stderr);
            Assert.Equal(0, exit);
            Assert.Contains("check: every row within its bound", stdout);
            var lines = File.ReadAllLines(csv);
            Assert.StartsWith("m,n,k,dtype,precision,", lines[0]);
            Assert.Equal(["exact", "weight-type", "exact", "weight-type"],
                lines[1..].Select(l => l.Split(',')[4]));
        }
        finally
        {
            File.Delete(csv);
        }
    }

    /// <summary>A runtime failure (here: a file that cannot be created) is one line, exit 1.</summary>
    [Fact]
    public void RuntimeFailureIsOneLineWithExit1()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"managed-no-such-{Guid.NewGuid():N}",
            "out.csv");
        var (exit, _, stderr) = Run("bench", "--seq", "16", "--dim", "16", "--heads", "1",
            "--out", missing);
        Assert.Equal(1, exit);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("managed: error: bench: ", lines[0]);
        Assert.Contains("managed-no-such-", lines[0]);
    }
}
