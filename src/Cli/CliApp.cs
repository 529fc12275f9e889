using System.Reflection;

namespace Managed.Cli;

/// <summary>
/// The front end's dispatch, callable in-process: help on <c>stdout</c>, exit 0; a usage error
/// (<see cref="UsageException"/>) as one "managed: error:" line and the usage on <c>stderr</c>,
/// exit 2; a command that fails at run time (a device not present, an unwritable file) as one
/// "managed: error:" line on <c>stderr</c>, exit 1. No stack trace reaches the user.
/// </summary>
internal static class CliApp
{
    /// <summary>Runs `managed <paramref name="args"/>`, writing to the two writers only; returns
    /// the exit code (0 done, 1 failed or a check failed, 2 usage error). Model commands open
    /// their models with <paramref name="openModel"/> (tests pass a fake), by default
    /// <see cref="ModelFactory.Open"/>.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr,
        ModelOpener? openModel = null)
    {
        CliCommand? command = null;
        try
        {
            if (args.Length == 0)
                throw new UsageException($"no command given (expected {CommandNames})");
            if (CliCommand.IsHelp(args[0]))
            {
                stdout.Write(CliCommand.TopHelp);
                return 0;
            }
            command = CliCommand.Find(args[0]) ?? throw new UsageException(
                $"unknown command '{args[0]}' (expected {CommandNames})");
            if (args.Skip(1).Any(CliCommand.IsHelp))
            {
                stdout.Write(command.Help);
                return 0;
            }
            return command.Run(command.Parse(args[1..]),
                new CliContext(stdout, stderr, openModel ?? ModelFactory.Open));
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"managed: error: {e.Message}");
            stderr.WriteLine(command?.Usage ?? CliCommand.TopUsage);
            stderr.WriteLine($"run 'managed {(command is null ? "" : command.Name + " ")}--help' "
                + "for the options");
            return 2;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"managed: error: {(command is null ? "" : command.Name + ": ")}"
                + Describe(e));
            return 1;
        }
    }

    private static string CommandNames =>
        string.Join(", ", CliCommand.All.Select(c => c.Name)) + " or --help";

    /// <summary>One line: the message of the innermost single cause; its type too where the
    /// type is not one a user-facing failure throws (a bug then, and the type says
    /// which).</summary>
    private static string Describe(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 }
               or TargetInvocationException or TypeInitializationException
               && e.InnerException is not null)
            e = e.InnerException!;
        string message = string.Join(' ', e.Message.Split(['\r', '\n'],
            StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return e is ArgumentException or InvalidOperationException or IOException
            or UnauthorizedAccessException or NotSupportedException or OutOfMemoryException
            or InvalidDataException or Managed.Models.ModelFormatException
            ? message : $"{e.GetType().Name}: {message}";
    }
}
