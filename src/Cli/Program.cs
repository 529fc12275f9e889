using Managed.Cli;

// managed check [--device auto|cpu|cuda|opencl|ilgpu-cpu] [--large] [--only text]
// managed bench [--device ...] (GPU/CPU throughput of exact attention)
return args.Length == 0 ? Usage() : args[0] switch
{
    "check" => CheckCommand.Run(CliOptions.Parse(args[1..])),
    "bench" when args.Contains("--variants") => VariantBench.Run(CliOptions.Parse(args[1..])),
    "bench" => BenchCommand.Run(CliOptions.Parse(args[1..])),
    "devices" => DevicesCommand.Run(args.Length > 1 ? args[1] : null),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: managed <command> [options]
          check    run every registered variant on a device against the fp64 reference
          bench    time exact attention (TFLOP/s) on a device
          devices  list the devices ILGPU sees
        options:
          --device auto|cpu|cuda|opencl|ilgpu-cpu   (default: cpu)
          --large                                     larger shapes (N up to 8192, D up to 256)
          --only TEXT                                 check: only variants whose name contains TEXT
          --seq N1,N2 --dim D1,D2 --heads H --batch B (bench shapes)
          --variants                                  bench: FlexAttention-style variants
          --reference                                 bench: time the fp64 reference instead
          --query-tile N --key-tile N                 CPU tile sizes (AttentionTuning)
          --out FILE                                  bench: also write CSV
        """);
    return 2;
}
