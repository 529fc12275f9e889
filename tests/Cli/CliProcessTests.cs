using Xunit;

namespace Managed.Tests.Cli;

/// <summary>
/// The front end as a shell sees it (defect 6): a usage error is one "managed: error:" line
/// naming the option, the value and what was expected, then the usage, on stderr, exit 2, with
/// no stack trace; help goes to stdout with exit 0 and lists every option; a check filter that
/// matches nothing fails; files are written only where an option names the folder.
/// </summary>
public sealed class CliProcessTests
{
    /// <summary>Usage errors, and texts the first stderr line must contain (option,
    /// value).</summary>
    public static TheoryData<string[], string[]> UsageErrors() => new()
    {
        { [], ["command"] },
        { ["frobnicate"], ["frobnicate"] },
        { ["check", "--bogus"], ["--bogus"] },
        { ["bench", "--bogus=1"], ["--bogus"] },
        { ["check", "--device", "nonsense"], ["--device", "nonsense"] },
        { ["check", "--device"], ["--device"] },
        { ["check", "--only"], ["--only"] },
        { ["check", "--only", "--large"], ["--only"] },
        { ["check", "--part", "2/1"], ["--part", "2/1"] },
        { ["check", "--part", "1"], ["--part", "'1'"] },
        { ["check", "--part", "a/b"], ["--part", "a/b"] },
        { ["check", "--seq", "1024"], ["--seq"] },
        { ["bench", "--seq", "abc"], ["--seq", "abc"] },
        { ["bench", "--seq", "-1"], ["--seq", "-1"] },
        { ["bench", "--seq", "0"], ["--seq", "0"] },
        { ["bench", "--seq", "1024,"], ["--seq", "1024,"] },
        { ["bench", "--dim", "64,x"], ["--dim", "x"] },
        { ["bench", "--heads", "0"], ["--heads", "0"] },
        { ["bench", "--batch", "-2"], ["--batch", "-2"] },
        { ["bench", "--heads", "99999999999"], ["--heads", "99999999999"] },
        { ["bench", "--query-tile", "abc"], ["--query-tile", "abc"] },
        { ["bench", "--key-tile", "-16"], ["--key-tile", "-16"] },
        { ["bench", "--out"], ["--out"] },
        { ["bench", "--device", "gpu"], ["--device", "gpu"] },
        { ["check", "--dtype", "fp8"], ["--dtype", "fp8"] },
        { ["check", "--dtype", "half,"], ["--dtype", "half,"] },
        { ["check", "--storage", "half"], ["--storage"] },
        { ["bench", "--dtype", "bf16,int8"], ["--dtype", "int8"] },
        { ["bench", "--storage", "double"], ["--storage", "double"] },
        { ["bench", "--linear", "--dtype", "half"], ["--dtype", "--linear"] },
        { ["check", "--precision", "fp16"], ["--precision", "fp16"] },
        { ["check", "--precision", "tf32", "--dtype", "half"], ["--precision", "--dtype"] },
        { ["bench", "--precision", "exact,tf64"], ["--precision", "tf64"] },
        { ["bench", "--precision", "tf32", "--variants"], ["--precision", "--variants"] },
        { ["bench", "--tc-stages", "3"], ["--tc-stages", "3"] },
        { ["bench", "--gemm", "--linear-precision", "fp8"], ["--linear-precision", "fp8"] },
        { ["bench", "--linear-precision", "exact"], ["--linear-precision"] },
        { ["bench", "--gemm", "--gemm-shapes", "4x4"], ["--gemm-shapes", "4x4"] },
        { ["bench", "--gemm", "--decode"], ["--gemm", "--decode"] },
        { ["devices", "/tmp/ptx"], ["/tmp/ptx"] },
        { ["devices", "--ptx-out"], ["--ptx-out"] },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public void UsageErrorIsOneLineThenUsageWithExit2(string[] args, string[] named)
    {
        var r = ManagedProcess.Run(args);
        CliAssert.UsageError(r.Exit, r.Out, r.Err, named);
    }

    /// <summary>Each command's options: every one must be in its help (and in the top
    /// help).</summary>
    public static TheoryData<string, string[]> CommandOptions() => new()
    {
        { "check", ["--device", "--large", "--only", "--part", "--dtype", "--precision",
            "--help"] },
        {
            "bench",
            ["--device", "--seq", "--dim", "--heads", "--batch", "--variants", "--reference",
             "--query-tile", "--key-tile", "--dtype", "--storage", "--precision", "--tc-rows",
             "--tc-stages", "--model", "--prompt-tokens", "--gemm", "--gemm-shapes",
             "--linear-precision",
             "--new-tokens", "--runs",
             "--random-llama-1b", "--out", "--help"]
        },
        { "devices", ["--ptx-out", "--help"] },
    };

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void TopHelpGoesToStdoutWithExit0AndListsEveryCommandAndOption(string flag)
    {
        var r = ManagedProcess.Run(flag);
        Assert.Equal(0, r.Exit);
        Assert.Equal("", r.Err);
        Assert.StartsWith("usage: managed", r.Out);
        foreach (var (command, options) in CommandOptions().Select(Row))
        {
            Assert.Contains(command, r.Out);
            foreach (string option in options) Assert.Contains(option, r.Out);
        }
    }

    [Theory]
    [MemberData(nameof(CommandOptions))]
    public void CommandHelpGoesToStdoutWithExit0AndListsEveryOption(string command,
        string[] options)
    {
        foreach (string flag in new[] { "--help", "-h" })
        {
            var r = ManagedProcess.Run(command, flag);
            Assert.Equal(0, r.Exit);
            Assert.Equal("", r.Err);
            Assert.StartsWith($"usage: managed {command}", r.Out);
            foreach (string option in options) Assert.Contains(option, r.Out);
        }
    }

    /// <summary>Defaults are part of the help: the shapes bench times when given none.</summary>
    [Fact]
    public void BenchHelpShowsTheDefaults()
    {
        var r = ManagedProcess.Run("bench", "--help");
        Assert.Equal(0, r.Exit);
        foreach (string d in new[] { "default: cpu", "default: 1024,4096,16384",
                     "default: 64,128", "default: 16", "default: 1" })
            Assert.Contains(d, r.Out);
    }

    /// <summary>A typo in --only must not pass CI with "0 checked".</summary>
    [Fact]
    public void CheckOnlyMatchingNothingFails()
    {
        var r = ManagedProcess.Run("check", "--only", "nosuchvariant");
        Assert.NotEqual(0, r.Exit);
        CliAssert.UsageError(r.Exit, r.Out, r.Err, ["--only", "nosuchvariant"]);
    }

    /// <summary>`devices --help` once wrote 132 PTX files into a folder named "--help".</summary>
    [Fact]
    public void DevicesHelpWritesNoFiles()
    {
        string dir = Directory.CreateTempSubdirectory("managed-cli-").FullName;
        try
        {
            var r = ManagedProcess.Run(dir, 300, "devices", "--help");
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
            Assert.Equal(0, r.Exit);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static (string, string[]) Row(object[] row) => ((string)row[0], (string[])row[1]);
}
