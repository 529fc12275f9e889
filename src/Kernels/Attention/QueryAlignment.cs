
namespace Managed.Kernels.Attention;

/// <summary>
/// Where query row i sits on the key axis when seqQ != seqK. Masks and score modifiers see this
/// position, not the row index, so "causal" means "key position &lt;= query position".
/// </summary>
public enum QueryAlignment : byte
{
    /// <summary>
    /// Position = i + (seqK - seqQ): the last query row lines up with the last key, as in decode
    /// with a KV cache and FlashAttention &gt;= 2.1. With seqQ &gt; seqK the first rows get negative
    /// positions, so under a causal mask they see no key (output 0, log-sum-exp -infinity).
    /// </summary>
    BottomRight,
    /// <summary>Position = i: the first query row lines up with the first key (PyTorch's tril).</summary>
    TopLeft,
}
