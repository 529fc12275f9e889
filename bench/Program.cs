using BenchmarkDotNet.Running;
using Managed.Bench;

// --quick: CI smoke run; --full: in-process harness writing RESULTS.md and the plot;
// --tune: AttentionTuning sweep; --peak: FMA probe; --decode: decode vs ORT GroupQueryAttention;
// --matmul: host linear layer GB/s (GEMV) and GFLOP/s (GEMM) beside the read bandwidth;
// anything else goes to BenchmarkDotNet.
string? mode = args.FirstOrDefault(a =>
    a is "--quick" or "--full" or "--tune" or "--peak" or "--loop" or "--exp" or "--decode"
    or "--matmul");
var rest = args.Where(a => a != mode).ToArray();
switch (mode)
{
    case "--quick": return Harness.Quick(rest);
    case "--full": return Harness.Full(rest);
    case "--tune": return Harness.Tune(rest);
    case "--loop": return Harness.Loop(rest);
    case "--decode": return DecodePeer.Run(rest);
    case "--matmul": return MatmulBench.Run(rest);
    case "--exp": return Managed.Bench.Experiments.ExpThroughput.Run();
    case "--peak":
        Console.WriteLine(PeakProbe.Measure(Environment.ProcessorCount, 1.0));
        return 0;
    default:
        BenchmarkSwitcher.FromAssembly(typeof(Harness).Assembly).Run(rest);
        return 0;
}
