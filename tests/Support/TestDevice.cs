using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;

namespace Managed.Tests.Support;

/// <summary>
/// A device under test with the tuning its fixture chose (tiles, reductions), applied to every
/// call's options, so one property class runs on several tunings of one device.
/// </summary>
public sealed class TestDevice(ComputeDevice device, AttentionTuning? tuning = null) : IDisposable
{
    /// <summary>The device.</summary>
    public ComputeDevice Device => device;

    /// <summary>The device's kind.</summary>
    public DeviceKind Kind => device.Kind;

    /// <summary>The device's name.</summary>
    public string Name => device.Name;

    /// <summary><paramref name="options"/> with this fixture's tuning.</summary>
    public AttentionOptions With(AttentionOptions options) =>
        tuning is null ? options : options with { Tuning = tuning };

    /// <summary>Softmax attention on host spans.</summary>
    public void Attention<TScore, TMask>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        FlashAttention.Forward(device, shape, query, key, value, output, logSumExp, score, mask,
            default(SoftmaxNormalizer), With(options));

    /// <summary>Attention with a normalizer on host spans.</summary>
    public void Attention<TScore, TMask, TNorm>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer =>
        FlashAttention.Forward(device, shape, query, key, value, output, logSumExp, score, mask,
            normalizer, With(options));

    /// <summary>Softmax attention on device views.</summary>
    public void Attention<TScore, TMask>(AttentionShape shape, ArrayView<float> query,
        ArrayView<float> key, ArrayView<float> value, ArrayView<float> output,
        ArrayView<float> logSumExp, TScore score, TMask mask, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        FlashAttention.Forward(device, shape, query, key, value, output, logSumExp, score, mask,
            default(SoftmaxNormalizer), With(options));

    /// <summary>Attention with a normalizer on device views.</summary>
    public void Attention<TScore, TMask, TNorm>(AttentionShape shape, ArrayView<float> query,
        ArrayView<float> key, ArrayView<float> value, ArrayView<float> output,
        ArrayView<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer =>
        FlashAttention.Forward(device, shape, query, key, value, output, logSumExp, score, mask,
            normalizer, With(options));

    /// <summary>The device's accelerator (null for the host).</summary>
    public Accelerator? Accelerator => device.Accelerator;

    /// <summary>A registry variant on host spans.</summary>
    public void Run(IAttentionVariant variant, AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, AttentionOptions options = default) =>
        variant.Forward(device, shape, query, key, value, output, logSumExp, With(options));

    /// <summary>A registry variant on host spans of Q, K and V stored as
    /// <typeparamref name="TStorage"/> (float, Half or BFloat16).</summary>
    public void Run<TStorage>(IAttentionVariant variant, AttentionShape shape,
        ReadOnlySpan<TStorage> query, ReadOnlySpan<TStorage> key, ReadOnlySpan<TStorage> value,
        Span<float> output, Span<float> logSumExp, AttentionOptions options = default)
        where TStorage : unmanaged =>
        variant.Forward(device, shape, query, key, value, output, logSumExp, With(options));

    /// <inheritdoc/>
    public void Dispose() => device.Dispose();
}
