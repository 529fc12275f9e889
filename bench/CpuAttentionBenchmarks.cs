using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;

namespace Managed.Bench;

/// <summary>
/// BenchmarkDotNet suite of exact CPU attention, B=1 H=8 fp32: this project's kernel, the naive
/// TensorPrimitives baseline and ONNX Runtime's two attention operators, all on the same threads
/// and inputs. Outputs are compared with ours in [GlobalSetup], before anything is timed.
/// </summary>
[Config(typeof(Config))]
public class CpuAttentionBenchmarks
{
    [Params(256, 1024, 4096)]
    public int SeqLen { get; set; }

    [Params(64, 128)]
    public int HeadDim { get; set; }

    [Params(false, true)]
    public bool Causal { get; set; }

    private List<Implementation> _impls = [];

    [GlobalSetup]
    public void Setup()
    {
        var c = new AttentionCase(1, 8, SeqLen, HeadDim, Causal);
        _impls = Implementation.For(c, Environment.ProcessorCount, AttentionTuning.Default);
        Implementation.Verify(c, _impls); // throws (and BDN reports the error) on a mismatch
    }

    [GlobalCleanup]
    public void Cleanup() => _impls.ForEach(i => i.Dispose());

    [Benchmark(Baseline = true)]
    public void Naive() => Run(Implementation.Naive);

    [Benchmark]
    public void Managed() => Run(Implementation.Managed);

    [Benchmark]
    public void OrtMultiHeadAttention() => Run(Implementation.OrtMha);

    [Benchmark]
    public void OrtAttention23() => Run(Implementation.OrtAttention);

    private void Run(string name) => _impls.First(i => i.Name == name).Run();

    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new GflopsColumn());
    }

    /// <summary>GFLOP/s from the median: 4·B·H·N²·D (halved for causal) / time.</summary>
    private sealed class GflopsColumn : IColumn
    {
        public string Id => "GFLOPs";
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Giga floating-point operations per second (median time)";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
            GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats == null) return "NA";
            var p = benchmarkCase.Parameters;
            double n = Convert.ToDouble(p["SeqLen"]), d = Convert.ToDouble(p["HeadDim"]);
            double flops = 4.0 * 8 * n * n * d * ((bool)p["Causal"] ? 0.5 : 1.0);
            return (flops / stats.Median).ToString("F1"); // ns: FLOP/ns = GFLOP/s
        }
    }
}
