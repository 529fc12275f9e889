using Managed.Kernels.Variants;

namespace Managed.Kernels.Backends;

/// <summary>Where a kernel runs.</summary>
public enum DeviceKind : byte
{
    /// <summary>CUDA if present, else OpenCL, else the host SIMD path.</summary>
    Auto,
    /// <summary>The host CPU through the SIMD kernels (no ILGPU).</summary>
    HostSimd,
    /// <summary>An NVIDIA GPU through ILGPU's CUDA backend.</summary>
    Cuda,
    /// <summary>An OpenCL device through ILGPU's OpenCL backend.</summary>
    OpenCL,
    /// <summary>ILGPU's CPU accelerator (GPU kernels emulated on the CPU; exact, slow).</summary>
    IlgpuCpu,
}

/// <summary>
/// A device that runs the attention kernels on host spans: it copies in, runs, copies out.
/// Device-resident tensors use the device's own entry points and skip the copies.
/// </summary>
public interface IKernelBackend : IDisposable
{
    /// <summary>The kind of this device (never Auto).</summary>
    DeviceKind Kind { get; }

    /// <summary>A display name: the kind and the device's own name.</summary>
    string Name { get; }

    /// <summary>Attention as in <see cref="FlashAttention.Forward{TScore,TMask}"/>, on this device.</summary>
    void Attention<TScore, TMask>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        Attention(shape, query, key, value, output, logSumExp, score, mask,
            default(SoftmaxNormalizer), options);

    /// <summary>Attention with a softmax replacement, as in
    /// <see cref="FlashAttention.Forward{TScore,TMask,TNorm}"/>, on this device.</summary>
    void Attention<TScore, TMask, TNorm>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer;
}

/// <summary>The host SIMD kernels as a backend.</summary>
public sealed class HostBackend(FlashAttentionTuning? tuning = null) : IKernelBackend
{
    private readonly FlashAttentionTuning _tuning = tuning ?? FlashAttentionTuning.Default;

    /// <inheritdoc/>
    public DeviceKind Kind => DeviceKind.HostSimd;

    /// <inheritdoc/>
    public string Name => $"cpu-simd({Simd.SimdSelect.Resolve(_tuning.Simd)}, {Environment.ProcessorCount} threads)";

    /// <inheritdoc/>
    public void Attention<TScore, TMask>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate =>
        FlashAttention.Forward(shape, query, key, value, output, logSumExp, score, mask, options, _tuning);

    /// <inheritdoc/>
    public void Attention<TScore, TMask, TNorm>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, TNorm normalizer,
        AttentionOptions options = default)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer =>
        FlashAttention.Forward(shape, query, key, value, output, logSumExp, score, mask,
            normalizer, options, _tuning);

    /// <summary>Nothing to release.</summary>
    public void Dispose() { }
}
