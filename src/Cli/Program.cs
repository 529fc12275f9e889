using Managed.Cli;

// managed generate|perplexity|forward|check|bench|devices [options]: `managed --help` lists every option (CliCommand.cs).
return CliApp.Run(args, Console.Out, Console.Error);
