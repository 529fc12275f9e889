using ILGPU.Runtime;

namespace Managed.Models;

/// <summary>
/// The activations of one forward call, allocated once for the largest call (a prefill of
/// MaxLength tokens, or a step of MaxBatch): nothing is allocated per token.
/// </summary>
internal sealed class RunState : IDisposable
{
    /// <summary>Rows of logits computed at once.</summary>
    public const int LogitRows = 64;

    public RunState(ModelConfig c, int rows, int batch, Accelerator? accelerator)
    {
        FloatBuffer Rows(int width) => new(accelerator, (long)rows * width);
        X = Rows(c.HiddenSize);
        Xb = Rows(Math.Max(c.HiddenSize, c.QueryWidth));
        Q = Rows(c.QueryWidth);
        K = Rows(c.KvWidth);
        V = Rows(c.KvWidth);
        Attention = Rows(c.QueryWidth);
        Gate = Rows(c.IntermediateSize);
        Up = Rows(c.IntermediateSize);
        Logits = new FloatBuffer(accelerator, (long)Math.Max(LogitRows, batch) * c.VocabSize);
        Tokens = new IndexBuffer(accelerator, rows);
        Positions = new IndexBuffer(accelerator, rows);
    }

    public FloatBuffer X { get; }           // (rows, hidden): the residual stream
    public FloatBuffer Xb { get; }          // (rows, hidden): a normed or projected copy
    public FloatBuffer Q { get; }           // (rows, heads, headDim)
    public FloatBuffer K { get; }           // (rows, kvHeads, headDim)
    public FloatBuffer V { get; }           // (rows, kvHeads, headDim)
    public FloatBuffer Attention { get; }   // (rows, heads, headDim)
    public FloatBuffer Gate { get; }        // (rows, intermediate)
    public FloatBuffer Up { get; }          // (rows, intermediate)
    public FloatBuffer Logits { get; }      // (LogitRows, vocab)
    public IndexBuffer Tokens { get; }      // (rows)
    public IndexBuffer Positions { get; }   // (rows)

    public void Dispose()
    {
        foreach (var b in new IDisposable[] { X, Xb, Q, K, V, Attention, Gate, Up, Logits,
                     Tokens, Positions })
            b.Dispose();
    }
}
