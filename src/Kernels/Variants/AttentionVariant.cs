using Managed.Kernels.Backends;

namespace Managed.Kernels.Variants;

/// <summary>A named (score modifier, mask) pair that tests, benchmarks and the CLI enumerate.</summary>
public interface IAttentionVariant
{
    /// <summary>Display label only; never parsed.</summary>
    string Name { get; }

    /// <summary>Runs the variant on <paramref name="backend"/>.</summary>
    void Run(IKernelBackend backend, AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, AttentionOptions options = default);

    /// <summary>The double-precision reference of the variant.</summary>
    (double[] Output, double[] LogSumExp) Reference(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, AttentionOptions options = default);

    /// <summary>Calls <paramref name="visitor"/> with this variant's closed types.</summary>
    void Accept(IVariantVisitor visitor);
}

/// <summary>A variant made of a score-modifier struct and a mask struct.</summary>
public sealed class AttentionVariant<TScore, TMask>(string name, TScore score, TMask mask) : IAttentionVariant
    where TScore : unmanaged, IScoreModifier
    where TMask : unmanaged, IMaskPredicate
{
    /// <inheritdoc/>
    public string Name => name;

    /// <summary>The score modifier.</summary>
    public TScore Score => score;

    /// <summary>The mask predicate.</summary>
    public TMask Mask => mask;

    /// <inheritdoc/>
    public void Run(IKernelBackend backend, AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, AttentionOptions options = default) =>
        backend.Attention(shape, query, key, value, output, logSumExp, score, mask, options);

    /// <inheritdoc/>
    public (double[] Output, double[] LogSumExp) Reference(AttentionShape shape,
        ReadOnlySpan<float> query, ReadOnlySpan<float> key, ReadOnlySpan<float> value,
        AttentionOptions options = default) =>
        ReferenceAttention.Forward(shape, query, key, value, score, mask, options);

    /// <inheritdoc/>
    public void Accept(IVariantVisitor visitor) => visitor.Visit(name, score, mask);

    /// <inheritdoc/>
    public override string ToString() => name;
}

/// <summary>Receives a variant's closed types, so generic code (compile checks, benchmarks)
/// can run over <see cref="VariantRegistry.All"/> without reflection.</summary>
public interface IVariantVisitor
{
    /// <summary>Called with the variant's operator structs.</summary>
    void Visit<TScore, TMask>(string name, TScore score, TMask mask)
        where TScore : unmanaged, IScoreModifier
        where TMask : unmanaged, IMaskPredicate;
}
