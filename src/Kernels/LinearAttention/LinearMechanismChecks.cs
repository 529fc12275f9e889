using ILGPU;
using ILGPU.Runtime;

namespace Managed.Kernels.LinearAttention;

/// <summary>Argument checks and scratch shared by the linear mechanisms
/// (<see cref="HedgehogAttention"/>, <see cref="InLineAttention"/>,
/// <see cref="FlowAttention"/>).</summary>
internal static class LinearMechanismChecks
{
    public static void CheckLength(long actual, long expected, string name, string layout)
    {
        if (actual != expected)
            throw new ArgumentException(
                $"{name} has {actual} elements; expected {expected} = {layout}.", name);
    }

    /// <summary>Checks the lengths of phi(Q)- or Q-shaped inputs of a dense
    /// <see cref="LinearAttentionShape"/> call whose query and key rows have
    /// <paramref name="rowDim"/> elements.</summary>
    public static void CheckTensors(LinearAttentionShape s, int rowDim, long query, long key,
        long value, long output)
    {
        s.Validate("shape");
        int b = s.Batch, h = s.Heads, hk = s.KvHeads, n = s.Length, dv = s.ValueDim;
        CheckLength(query, (long)b * h * n * rowDim, "query",
            $"batch {b} x heads {h} x length {n} x {rowDim}");
        CheckLength(key, (long)b * hk * n * rowDim, "key",
            $"batch {b} x kvHeads {hk} x length {n} x {rowDim}");
        CheckLength(value, s.ValueLength, "value",
            $"batch {b} x kvHeads {hk} x length {n} x valueDim {dv}");
        CheckLength(output, s.OutputLength, "output",
            $"batch {b} x heads {h} x length {n} x valueDim {dv}");
    }

    public static bool Overlaps(ArrayView<float> a, ArrayView<float> b)
    {
        if (a.Length == 0 || b.Length == 0) return false;
        IContiguousArrayView x = a, y = b;
        return ReferenceEquals(x.Buffer, y.Buffer)
            && x.IndexInBytes < y.IndexInBytes + y.LengthInBytes
            && y.IndexInBytes < x.IndexInBytes + x.LengthInBytes;
    }

    /// <summary>Throws naming <paramref name="name"/> when a caller's scratch is neither empty
    /// nor of <paramref name="expected"/> elements or overlaps one of the tensors.</summary>
    public static void CheckScratch(ArrayView<float> scratch, long expected, string name,
        string layout, params ArrayView<float>[] tensors)
    {
        if (scratch.Length == 0) return;
        CheckLength(scratch.Length, expected, name, layout + " (or empty)");
        foreach (var t in tensors)
            if (Overlaps(scratch, t))
                throw new ArgumentException(
                    $"{name} must not overlap the call's tensors.", name);
    }
}
