using System.Runtime.CompilerServices;

namespace Managed.Kernels.Variants;

/// <summary>
/// Integer helpers for mask predicates. Branch-only (no Math calls that might throw, no
/// BitOperations), so ILGPU compiles them on every backend.
/// </summary>
internal static class MaskMath
{
    /// <summary>min(a, b)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Min(int a, int b) => a < b ? a : b;

    /// <summary>max(a, b)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Max(int a, int b) => a > b ? a : b;

    /// <summary>x clamped to the int range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Saturate(long x) => x > int.MaxValue ? int.MaxValue : x < int.MinValue ? int.MinValue : (int)x;

    /// <summary>
    /// a / b for b &gt;= 1 and <paramref name="inverse"/> = 1f / b, through a float multiply where
    /// that is exact: for 0 &lt;= a &lt; 2^22 - 1, (a + 0.5) / b lies at least 0.5 / b from an
    /// integer and the float product is within (a + 0.5) 2^-23 / b &lt; 0.5 / b of it, so the
    /// truncation is floor(a / b). GPUs have no integer divider (a division is ~20
    /// instructions); elsewhere it is the integer division.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Divide(int a, int b, float inverse) =>
        (uint)a < (1u << 22) - 1 ? (int)((a + 0.5f) * inverse) : a / b;

    /// <summary>floor(a / b) for b &gt; 0 (C# division truncates toward zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int FloorDiv(int a, int b)
    {
        int q = a / b;
        return (a % b != 0 && a < 0) ? q - 1 : q;
    }

    /// <summary>a mod b in [0, b) for b &gt; 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Mod(int a, int b)
    {
        int r = a % b;
        return r < 0 ? r + b : r;
    }

    /// <summary>Number of bits of x &gt;= 0: 0 for 0, 1 for 1, 2 for 2..3, 3 for 4..7, ...</summary>
    public static int BitLength(int x)
    {
        int n = 0;
        while (x > 0) { n++; x >>= 1; }
        return n;
    }

    /// <summary>True for 1, 2, 4, 8, ...</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsPowerOfTwo(int x) => x > 0 && (x & (x - 1)) == 0;

    /// <summary>Smallest power of two &gt;= x (1 for x &lt;= 1); int.MaxValue past 2^30.</summary>
    public static int NextPowerOfTwo(int x)
    {
        int p = 1;
        while (p < x)
        {
            if (p >= (1 << 30)) return int.MaxValue;
            p <<= 1;
        }
        return p;
    }

    /// <summary>Empty if <paramref name="any"/> is false, Full if <paramref name="all"/>, else Partial.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TileKind Kind(bool any, bool all) =>
        !any ? TileKind.Empty : all ? TileKind.Full : TileKind.Partial;
}
