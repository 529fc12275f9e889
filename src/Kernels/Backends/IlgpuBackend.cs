using Managed.Kernels.Variants;

namespace Managed.Kernels.Backends;

/// <summary>Placeholder until the ILGPU kernel lands.</summary>
public sealed class IlgpuBackend : IKernelBackend
{
    internal static IKernelBackend? TryOpenGpu(FlashAttentionTuning? tuning) => null;

    internal static IKernelBackend Open(DeviceKind kind, FlashAttentionTuning? tuning) =>
        throw new InvalidOperationException($"Device {kind} is not available.");

    public DeviceKind Kind => DeviceKind.IlgpuCpu;
    public string Name => "ilgpu";

    public void Attention<TScore, TMask>(AttentionShape shape, ReadOnlySpan<float> query,
        ReadOnlySpan<float> key, ReadOnlySpan<float> value, Span<float> output,
        Span<float> logSumExp, TScore score, TMask mask, AttentionOptions options = default)
        where TScore : unmanaged, IScoreModifier
        where TMask : unmanaged, IMaskPredicate => throw new NotSupportedException();

    public void Dispose() { }
}
