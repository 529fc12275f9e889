using Microsoft.ML.OnnxRuntime;

namespace Managed.Bench.Onnx;

/// <summary>
/// One ONNX Runtime CPU session over a generated attention model, with inputs and the output
/// bound to preallocated arrays (no copies inside the timed call).
/// </summary>
public sealed class OrtAttention : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _run = new();
    private readonly OrtValue[] _inputs, _outputs;
    private static readonly string[] InputNames = ["q", "k", "v"], OutputNames = ["out"];

    /// <summary>The output array the session writes, in the operator's layout.</summary>
    public float[] Output { get; }

    /// <summary>Creates the session; q, k, v are already in the operator's layout.</summary>
    public OrtAttention(OrtOperator op, AttentionCase c, int threads)
    {
        byte[] model = OnnxModels.Build(op, c.Batch, c.Heads, c.SeqLen, c.HeadDim, c.Causal);
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(model, options);
        bool bsnh = op == OrtOperator.MultiHeadAttention;
        long[] shape = bsnh
            ? [c.Batch, c.SeqLen, (long)c.Heads * c.HeadDim]   // (batch, seq, heads * headDim)
            : [c.Batch, c.Heads, c.SeqLen, c.HeadDim];         // (batch, heads, seq, headDim)
        float[] q = bsnh ? AttentionCase.ToBsnh(c.Q, c) : c.Q;
        float[] k = bsnh ? AttentionCase.ToBsnh(c.K, c) : c.K;
        float[] v = bsnh ? AttentionCase.ToBsnh(c.V, c) : c.V;
        Output = new float[c.Q.Length];
        _inputs =
        [
            OrtValue.CreateTensorValueFromMemory(q, shape),
            OrtValue.CreateTensorValueFromMemory(k, shape),
            OrtValue.CreateTensorValueFromMemory(v, shape),
        ];
        _outputs = [OrtValue.CreateTensorValueFromMemory(Output, shape)];
        Layout = bsnh ? "BSNH" : "BNSH";
    }

    /// <summary>"BSNH" or "BNSH": the layout of <see cref="Output"/>.</summary>
    public string Layout { get; }

    /// <summary>Runs the model once, writing <see cref="Output"/>.</summary>
    public void Run() => _session.Run(_run, InputNames, _inputs, OutputNames, _outputs);

    /// <summary>The output in (batch, heads, seq, headDim) order.</summary>
    public float[] OutputBnsh(AttentionCase c) =>
        Layout == "BSNH" ? AttentionCase.FromBsnh(Output, c) : Output;

    public void Dispose()
    {
        foreach (var v in _inputs) v.Dispose();
        foreach (var v in _outputs) v.Dispose();
        _run.Dispose();
        _session.Dispose();
    }
}
