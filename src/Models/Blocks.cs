namespace Managed.Models;

/// <summary>
/// The element-wise and per-row blocks of a transformer (the matmuls are
/// <see cref="WeightMatrix.Linear"/>, attention is <see cref="AttentionLayer"/>), written once
/// for the host (<see cref="HostBlocks"/>: spans, SIMD) and once for an ILGPU device
/// (<see cref="IlgpuBlocks"/>: one small kernel each). Rows are tokens, row-major.
/// </summary>
internal abstract class Blocks
{
    /// <summary>HF's RMSNorm: y = w · x / √(mean(x²) + ε), computed in fp32 (as HF does even
    /// for an fp64 model), the weight multiplied last.</summary>
    public abstract void RmsNorm(Act x, Act y, Act weight, int rows, int width, float eps);

    /// <summary>y = (x − mean) / √(var + ε) · w + b, var the biased variance.</summary>
    public abstract void LayerNorm(Act x, Act y, Act weight, Act bias, int rows, int width,
        float eps);

    /// <summary>Rotates each dim-wide head of x (rows, heads, dim) in place, transformers'
    /// rotate_half: x'[i] = x[i]c[i] − x[i+d/2]s[i], x'[i+d/2] = x[i+d/2]c[i] + x[i]s[i], with
    /// cos and sin (rows, dim/2) for each row's position.</summary>
    public abstract void Rope(Act x, int rows, int heads, int dim, Act cos, Act sin);

    /// <summary>gate = act(gate) · up over n elements (SwiGLU with silu); up may be
    /// overwritten (it is scratch).</summary>
    public abstract void GatedMul(Act gate, Act up, long n, Activation activation);

    /// <summary>x = act(x) over n elements for a GELU-family or ReLU activation.</summary>
    public abstract void Activate(Act x, long n, Activation activation);

    /// <summary>Gated attention's output gate: for each row r and head h,
    /// attention[r, h, :] ·= σ(weight[h] · x[r] + bias[h]), x (rows, hidden), attention
    /// (rows, heads, dim), weight (heads, hidden), bias (heads).</summary>
    public abstract void OutputGate(Act x, Act attention, Act weight, Act bias, int rows,
        int hidden, int heads, int dim);

    /// <summary>x += y over n elements (the residual).</summary>
    public abstract void Add(Act x, Act y, long n);

    /// <summary>dst (heads, rows, dim) = src (rows, heads, dim) in float: token-major rows
    /// to the head-major layout of the decode kernel's queries.</summary>
    public abstract void ToHeadMajor(Act src, Act dst, int rows, int heads, int dim);

    /// <summary>dst (rows, heads, dim) = src (heads, rows, dim): the inverse of
    /// <see cref="ToHeadMajor"/>.</summary>
    public abstract void FromHeadMajor(Act src, Act dst, int rows, int heads, int dim);

    /// <summary>Copies y (n floats) to the host.</summary>
    public abstract void Download(Act y, Span<float> destination);

    /// <summary>Makes the device current on the calling thread before a forward pass
    /// (CUDA contexts are per thread; nothing on the host).</summary>
    public virtual void Bind() { }

    /// <summary>Waits for enqueued device work (nothing on the host).</summary>
    public abstract void Synchronize();

    /// <summary>Uploads host floats into y.</summary>
    public abstract void Upload(ReadOnlySpan<float> source, Act y);
}
