using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;

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

    /// <summary>Throws unless <paramref name="state"/> (if any) fits a causal call of
    /// <paramref name="shape"/> on <paramref name="device"/>: not disposed, causal, the same
    /// device, batch x kvHeads x features x valueDim equal.</summary>
    public static void CheckState(LinearAttentionState? state, ComputeDevice device,
        LinearAttentionShape shape, bool causal)
    {
        if (state is null) return;
        state.ThrowIfDisposed();
        if (!causal)
            throw new ArgumentException(
                "A state carries a causal prefix; a non-causal call cannot use one.",
                nameof(state));
        if (!ReferenceEquals(state.Device, device))
            throw new ArgumentException(
                $"The state lives on {state.Device.Name}, not on {device.Name}.", nameof(state));
        if (state.Batch != shape.Batch || state.KvHeads != shape.KvHeads
            || state.Features != shape.Features || state.ValueDim != shape.ValueDim)
            throw new ArgumentException(
                $"The state is batch {state.Batch} x kvHeads {state.KvHeads} x features "
                + $"{state.Features} x valueDim {state.ValueDim}; the call needs "
                + $"{shape.Batch} x {shape.KvHeads} x {shape.Features} x {shape.ValueDim}.",
                nameof(state));
    }

    /// <summary>Throws unless <paramref name="map"/> suits the device (its tables on the
    /// device's side and accelerator), its parameters fit headDim and heads, and it makes the
    /// shape's feature count.</summary>
    public static void CheckMap<TMap>(ComputeDevice device, TMap map, int headDim, int heads,
        int features, string name)
        where TMap : struct, IFeatureMap
    {
        VariantChecks.CheckTableSide<TMap>(!device.IsHost, name);
        if (map.ParameterError(headDim, heads) is { } error)
            throw new ArgumentException(error, name);
        if (!device.IsHost) TableOwnership.Check(map, device.Ilgpu, name);
        if (map.Features(headDim) != features)
            throw new ArgumentException($"{name} makes {map.Features(headDim)} features from "
                + $"rows of headDim {headDim}; the shape has Features = {features}.", name);
    }
}
