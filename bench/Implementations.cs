using Managed.Bench.Onnx;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;

namespace Managed.Bench;

/// <summary>One implementation under test, bound to one case and its output buffer.</summary>
public sealed class Implementation(string name, Action run, Func<float[]> outputBnsh,
    IDisposable? owner = null) : IDisposable
{
    public string Name { get; } = name;
    public Action Run { get; } = run;

    /// <summary>The last output as (batch, heads, seq, headDim).</summary>
    public float[] OutputBnsh() => outputBnsh();

    public void Dispose() => owner?.Dispose();

    public const string Managed = "Managed", Naive = "Naive (TensorPrimitives)",
        OrtMha = "ORT MultiHeadAttention", OrtAttention = "ORT Attention-23";

    /// <summary>The implementations of one case, all on <paramref name="threads"/> threads:
    /// ours first (the reference of the comparison), then ORT's two operators, then naive.
    /// </summary>
    public static List<Implementation> For(AttentionCase c, int threads,
        AttentionTuning tuning, bool naive = true)
    {
        tuning = tuning with { MaxDegreeOfParallelism = threads };
        var ours = new float[c.Q.Length];      // (batch, heads, seq, headDim)
        var list = new List<Implementation>
        {
            new(Managed, () => c.RunManaged(ours, tuning), () => ours),
        };
        foreach (var op in new[] { OrtOperator.MultiHeadAttention, OrtOperator.Attention23 })
        {
            var ort = new OrtAttention(op, c, threads);
            list.Add(new(op == OrtOperator.MultiHeadAttention ? OrtMha : OrtAttention, ort.Run,
                () => ort.OutputBnsh(c), ort));
        }
        if (naive)
        {
            var baseline = new float[c.Q.Length]; // (batch, heads, seq, headDim)
            list.Add(new(Naive, () => NaiveAttention.Forward(c, baseline, threads),
                () => baseline));
        }
        return list;
    }

    /// <summary>Runs every implementation once and checks max |out - ours| &lt; tolerance;
    /// throws before anything is timed otherwise.</summary>
    public static Dictionary<string, double> Verify(AttentionCase c, List<Implementation> impls,
        double tolerance = 1e-4)
    {
        foreach (var impl in impls) impl.Run();
        float[] reference = impls[0].OutputBnsh();
        var diffs = new Dictionary<string, double>();
        foreach (var impl in impls.Skip(1))
        {
            double diff = AttentionCase.MaxAbsDiff(reference, impl.OutputBnsh());
            diffs[impl.Name] = diff;
            if (!(diff < tolerance))
                throw new InvalidOperationException(
                    $"{c.Name}: {impl.Name} differs from {impls[0].Name} by {diff:E3} "
                    + $"(max abs), tolerance {tolerance:E0}. Nothing was timed.");
        }
        return diffs;
    }
}
