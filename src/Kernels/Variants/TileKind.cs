
namespace Managed.Kernels.Variants;

/// <summary>What a mask says about a whole tile of (query, key) pairs.</summary>
public enum TileKind : byte
{
    /// <summary>No pair in the tile is allowed: the kernel skips the tile.</summary>
    Empty,
    /// <summary>Some pairs are allowed: the kernel tests each pair with <c>Allows</c>.</summary>
    Partial,
    /// <summary>Every pair is allowed: the kernel skips the per-pair test.</summary>
    Full,
}
