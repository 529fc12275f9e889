using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;
using Managed.Kernels.Reference;

namespace Managed.Kernels.Registry;

/// <summary>A named (score modifier, mask, normalizer) triple that tests, benchmarks and the
/// CLI enumerate.</summary>
public interface IAttentionVariant
{
    /// <summary>Display label only; never parsed.</summary>
    string Name { get; }

    /// <summary>Runs the variant on host spans on <paramref name="device"/>, as
    /// <see cref="FlashAttention.Forward{TScore, TMask, TNorm}(ComputeDevice, AttentionShape,
    /// ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float},
    /// TScore, TMask, TNorm, AttentionOptions)"/> does.</summary>
    void Forward(ComputeDevice device, AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, AttentionOptions options = default);

    /// <summary>Runs the variant on host spans of Q, K and V stored as
    /// <typeparamref name="TStorage"/> (float, <see cref="System.Half"/> or
    /// <see cref="Layouts.BFloat16"/>), as the typed
    /// <see cref="FlashAttention.Forward{TStorage, TScore, TMask, TNorm}(ComputeDevice,
    /// AttentionShape, ReadOnlySpan{TStorage}, ReadOnlySpan{TStorage}, ReadOnlySpan{TStorage},
    /// Span{float}, Span{float}, TScore, TMask, TNorm, AttentionOptions)"/> does: widened to
    /// float on load, or on the tensor cores of a CUDA device where that overload takes them
    /// there; the output and log-sum-exp are float.</summary>
    /// <exception cref="ArgumentException">As that overload.</exception>
    void Forward<TStorage>(ComputeDevice device, AttentionShape shape,
        ReadOnlySpan<TStorage> query, ReadOnlySpan<TStorage> key, ReadOnlySpan<TStorage> value,
        Span<float> output, Span<float> logSumExp, AttentionOptions options = default)
        where TStorage : unmanaged;

    /// <summary>The double-precision reference of the variant.</summary>
    (double[] Output, double[] LogSumExp) Reference(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, AttentionOptions options = default);

    /// <summary>Calls <paramref name="visitor"/> with this variant's closed types, as bound for
    /// the host (operators that read tables get host tables made for a nominal shape).</summary>
    void Accept(IVariantVisitor visitor);

    /// <summary>This variant with its operators bound on the host for <paramref name="shape"/>
    /// (tables made for that shape); the variant itself when it reads no tables.</summary>
    IAttentionVariant ForHost(AttentionShape shape) => this;

    /// <summary>This variant with its operator types as an ILGPU device sees them (tables as
    /// device views, unbound): for compiling kernels, never for running them.</summary>
    IAttentionVariant DeviceTyped => this;
}

/// <summary>A variant made of a score-modifier struct, a mask struct and a normalizer struct.</summary>
public class AttentionVariant<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
    : IAttentionVariant
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate
    where TNorm : struct, INormalizer
{
    /// <inheritdoc/>
    public string Name => name;

    /// <summary>The score modifier.</summary>
    public TScore Score => score;

    /// <summary>The mask predicate.</summary>
    public TMask Mask => mask;

    /// <summary>The normalizer.</summary>
    public TNorm Normalizer => norm;

    /// <inheritdoc/>
    public void Forward(ComputeDevice device, AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, AttentionOptions options = default) =>
        FlashAttention.Forward(device, shape, query, key, value, output, logSumExp, score, mask,
            norm, options);

    /// <inheritdoc/>
    public void Forward<TStorage>(ComputeDevice device, AttentionShape shape,
        ReadOnlySpan<TStorage> query, ReadOnlySpan<TStorage> key, ReadOnlySpan<TStorage> value,
        Span<float> output, Span<float> logSumExp, AttentionOptions options = default)
        where TStorage : unmanaged =>
        FlashAttention.Forward(device, shape, query, key, value, output, logSumExp, score, mask,
            norm, options);

    /// <inheritdoc/>
    public (double[] Output, double[] LogSumExp) Reference(AttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        AttentionOptions options = default) =>
        ReferenceAttention.Forward(shape, query, key, value, score, mask, norm, options);

    /// <inheritdoc/>
    public void Accept(IVariantVisitor visitor) => visitor.Visit(name, score, mask, norm);

    /// <inheritdoc/>
    public override string ToString() => name;
}

/// <summary>A softmax variant: a score-modifier struct and a mask struct.</summary>
public sealed class AttentionVariant<TScore, TMask>(string name, TScore score, TMask mask)
    : AttentionVariant<TScore, TMask, SoftmaxNormalizer>(name, score, mask, default)
    where TScore : struct, IScoreModifier
    where TMask : struct, IMaskPredicate;

/// <summary>Receives a variant's closed types, so generic code (compile checks, benchmarks)
/// can run over <see cref="VariantRegistry.All"/> without reflection.</summary>
public interface IVariantVisitor
{
    /// <summary>Called with the variant's operator structs.</summary>
    void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer;
}
