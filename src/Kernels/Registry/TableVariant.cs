using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Registry;

/// <summary>
/// A registry variant whose operators read tables (document ids, a tree, a block layout, head
/// flags, a bias table). The tables depend on the call's shape, so each subclass makes them
/// for a shape (deterministically) and closes its operator types over a table type: host
/// tables for the host kernel, device views on ILGPU devices (uploaded per call and released
/// after it).
/// </summary>
public abstract class TableVariant(string name) : IAttentionVariant
{
    /// <summary>The shape <see cref="Accept"/> binds tables for.</summary>
    public static readonly AttentionShape NominalShape = new(2, 8, 2, 256, 256, 64, 64);

    /// <inheritdoc/>
    public string Name => name;

    /// <summary>The int and float tables of this variant for <paramref name="shape"/>.</summary>
    protected abstract (int[] Ints, float[] Floats) Tables(AttentionShape shape);

    /// <summary>The variant over <paramref name="ints"/> and <paramref name="floats"/>, made for
    /// <paramref name="shape"/>.</summary>
    protected abstract IAttentionVariant Bind<TInts, TFloats>(TInts ints, TFloats floats, AttentionShape shape)
        where TInts : struct, ITable<int>
        where TFloats : struct, ITable<float>;

    /// <inheritdoc/>
    public void Forward(ComputeDevice device, AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, AttentionOptions options = default) =>
        Forward<float>(device, shape, query, key, value, output, logSumExp, options);

    /// <inheritdoc/>
    public void Forward<TStorage>(ComputeDevice device, AttentionShape shape,
        ReadOnlySpan<TStorage> query, ReadOnlySpan<TStorage> key, ReadOnlySpan<TStorage> value,
        Span<float> output, Span<float> logSumExp, AttentionOptions options = default)
        where TStorage : unmanaged
    {
        ArgumentNullException.ThrowIfNull(device);
        shape.Validate();
        if (device.IsHost)
        {
            ForHost(shape).Forward(device, shape, query, key, value, output, logSumExp, options);
            return;
        }
        var (ints, floats) = Tables(shape);
        var accelerator = device.Accelerator!;
        using var deviceInts = new VariantTable<int>(ints).Upload(accelerator);
        using var deviceFloats = new VariantTable<float>(floats).Upload(accelerator);
        // The span entry point waits for the kernel, so the tables outlive it.
        Bind(new DeviceTable<int>(deviceInts.View.SubView(0, ints.Length)),
                new DeviceTable<float>(deviceFloats.View.SubView(0, floats.Length)), shape)
            .Forward(device, shape, query, key, value, output, logSumExp, options);
    }

    /// <inheritdoc/>
    public (double[] Output, double[] LogSumExp) Reference(AttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        AttentionOptions options = default) =>
        ForHost(shape).Reference(shape, query, key, value, options);

    /// <inheritdoc/>
    public void Accept(IVariantVisitor visitor) => ForHost(NominalShape).Accept(visitor);

    /// <summary>Bound to host tables made for <paramref name="shape"/> (the operators keep
    /// their pinned tables alive).</summary>
    public IAttentionVariant ForHost(AttentionShape shape)
    {
        var (ints, floats) = Tables(shape);
        return Bind(new VariantTable<int>(ints).Host, new VariantTable<float>(floats).Host, shape);
    }

    /// <inheritdoc/>
    public IAttentionVariant DeviceTyped =>
        Bind(default(DeviceTable<int>), default(DeviceTable<float>), NominalShape);

    /// <inheritdoc/>
    public override string ToString() => name;
}
