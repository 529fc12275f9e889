using System.Diagnostics;

namespace Managed.Tests.Cli;

/// <summary>
/// Runs the console front end (managed.dll, copied beside the tests by the project reference)
/// as a child process through the dotnet host: the exit code and the two streams are what a
/// shell or CI sees, including an unhandled exception's abort (134) and its stack trace.
/// </summary>
internal static class ManagedProcess
{
    /// <summary>The finished run: exit code, standard output, standard error.</summary>
    public readonly record struct Result(int Exit, string Out, string Err);

    /// <summary>managed <paramref name="args"/> in <paramref name="workingDirectory"/> (the
    /// test's own by default); killed and failed after <paramref name="timeoutSeconds"/>.</summary>
    public static Result Run(string? workingDirectory, int timeoutSeconds, params string[] args)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "managed.dll"));
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)
            ?? throw new InvalidOperationException("could not start managed.dll");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeoutSeconds * 1000))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException(
                $"managed {string.Join(' ', args)} ran past {timeoutSeconds} s: {output.Result}");
        }
        process.WaitForExit();   // drains the redirected streams
        return new Result(process.ExitCode, output.Result, error.Result);
    }

    /// <inheritdoc cref="Run(string?, int, string[])"/>
    public static Result Run(params string[] args) => Run(null, 120, args);

    // `dotnet test` exports the host it runs under; a plain runner falls back to the PATH.
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host
            && File.Exists(host) ? host : "dotnet";
}
