using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>Every key is allowed: exact (dense) attention.</summary>
public readonly struct NoMask : IMaskPredicate
{
    /// <summary>Every row is [0, int.MaxValue).</summary>
    public static bool RowIsInterval => true;

    /// <summary>0 (no bound)</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>int.MaxValue (no bound)</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => int.MaxValue;

    /// <summary>true</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) => true;

    /// <summary>Full</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) => TileKind.Full;
}

/// <summary>
/// Causal: k &lt;= q, with q the query position (so the alignment of seqQ != seqK comes from
/// <see cref="QueryAlignment"/>: bottom-right for decode, top-left for PyTorch's tril).
/// </summary>
public readonly struct CausalMask : IMaskPredicate
{
    /// <summary>Row q is [0, q + 1).</summary>
    public static bool RowIsInterval => true;

    /// <summary>0</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>q1: keys after the last query are never allowed.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => q1;

    /// <summary>k &lt;= q</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k) => k <= q;

    /// <summary>Empty when the first key is after the last query; Full when the last key is at
    /// or before the first query.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1) =>
        k0 > q1 - 1 ? TileKind.Empty : k1 - 1 <= q0 ? TileKind.Full : TileKind.Partial;
}
