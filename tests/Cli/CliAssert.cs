using Xunit;

namespace Managed.Tests.Cli;

/// <summary>The shape of a usage error, shared by the process and in-process tests.</summary>
internal static class CliAssert
{
    /// <summary>Exit 2, nothing on stdout, stderr = one "managed: error:" line containing every
    /// text of <paramref name="named"/>, then the usage; no stack-trace line anywhere.</summary>
    public static void UsageError(int exit, string stdout, string stderr, string[] named)
    {
        var lines = stderr.Split('\n', StringSplitOptions.TrimEntries);
        Assert.True(lines[0].StartsWith("managed: error: ", StringComparison.Ordinal),
            $"stderr does not start with an error line:\n{stderr}");
        foreach (string text in named)
            Assert.True(lines[0].Contains(text, StringComparison.Ordinal),
                $"the error line does not name '{text}': {lines[0]}");
        Assert.True(
            lines.Length > 1 && lines[1].StartsWith("usage: managed", StringComparison.Ordinal),
            $"the usage does not follow the error line:\n{stderr}");
        Assert.DoesNotContain(lines, l => l.StartsWith("at ", StringComparison.Ordinal));
        Assert.DoesNotContain("Unhandled exception", stderr);
        Assert.Equal("", stdout);
        Assert.Equal(2, exit);
    }
}
