using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// The recurrent state of causal linear attention for a batch of sequences, next to (or in
/// place of) a KV cache: per (sequence, KV head) S = sum_s lambda^(t-s) phi(k_s) v_s^T
/// (features x valueDim) and z = sum_s lambda^(t-s) phi(k_s) (features), where the memory of
/// the prefill was: a call of <see cref="ChunkedLinearAttention"/> with this state starts from
/// it and leaves it after its last token, so generation costs O(features x valueDim) per token
/// whatever the length. Lives on the device it was made for; Dispose releases device memory.
/// </summary>
public sealed class LinearAttentionState : IDisposable
{
    private readonly float[]? _hostS, _hostZ;
    private MemoryBuffer1D<float, Stride1D.Dense>? _deviceS, _deviceZ;
    private bool _disposed;

    /// <summary>A zero state (no tokens) on <paramref name="device"/>.</summary>
    /// <exception cref="ArgumentException">A size is not positive or the state is larger than
    /// 2^31 - 1 elements.</exception>
    public LinearAttentionState(ComputeDevice device, int batch, int kvHeads, int features,
        int valueDim)
    {
        ArgumentNullException.ThrowIfNull(device);
        new LinearAttentionShape(batch, kvHeads, kvHeads, 1, features, valueDim)
            .Validate("state");
        Device = device;
        (Batch, KvHeads, Features, ValueDim) = (batch, kvHeads, features, valueDim);
        using var lease = device.Use();
        if (device.IsHost)
        {
            _hostS = new float[StateLength];
            _hostZ = new float[NormalizerLength];
        }
        else
        {
            _deviceS = device.Ilgpu.Allocate1D<float>(StateLength);
            _deviceZ = device.Ilgpu.Allocate1D<float>(NormalizerLength);
            _deviceS.MemSetToZero();
            _deviceZ.MemSetToZero();
        }
    }

    /// <summary>The device whose memory holds the state.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Sequences.</summary>
    public int Batch { get; }
    /// <summary>KV heads per sequence (each with its own state).</summary>
    public int KvHeads { get; }
    /// <summary>Features of the mapped keys.</summary>
    public int Features { get; }
    /// <summary>Value dims.</summary>
    public int ValueDim { get; }

    /// <summary>Tokens absorbed since the state was made or reset (the same for every
    /// sequence: every call advances all of them by its length).</summary>
    public int Tokens { get; internal set; }

    /// <summary>batch * kvHeads * features * valueDim</summary>
    public int StateLength => Batch * KvHeads * Features * ValueDim;

    /// <summary>batch * kvHeads * features</summary>
    public int NormalizerLength => Batch * KvHeads * Features;

    /// <summary>Back to zero tokens.</summary>
    /// <exception cref="ObjectDisposedException">The state is disposed.</exception>
    public void Reset()
    {
        ThrowIfDisposed();
        using var lease = Device.Use();
        if (_hostS is not null)
        {
            Array.Clear(_hostS);
            Array.Clear(_hostZ!);
        }
        else
        {
            _deviceS!.View.MemSetToZero(Device.Ilgpu.DefaultStream);
            _deviceZ!.View.MemSetToZero(Device.Ilgpu.DefaultStream);
        }
        Tokens = 0;
    }

    /// <summary>Copies S (batch, kvHeads, features, valueDim) and z (batch, kvHeads, features)
    /// to host spans (waits for the device).</summary>
    /// <exception cref="ArgumentException">A span has the wrong length.</exception>
    /// <exception cref="ObjectDisposedException">The state is disposed.</exception>
    public void CopyTo(Span<float> state, Span<float> normalizer)
    {
        ThrowIfDisposed();
        if (state.Length != StateLength)
            throw new ArgumentException($"state has {state.Length} elements; expected {StateLength}"
                + $" = batch {Batch} x kvHeads {KvHeads} x features {Features} x valueDim {ValueDim}.",
                nameof(state));
        if (normalizer.Length != NormalizerLength)
            throw new ArgumentException($"normalizer has {normalizer.Length} elements; expected "
                + $"{NormalizerLength} = batch {Batch} x kvHeads {KvHeads} x features {Features}.",
                nameof(normalizer));
        using var lease = Device.Use();
        if (_hostS is not null)
        {
            _hostS.CopyTo(state);
            _hostZ!.CopyTo(normalizer);
            return;
        }
        _deviceS!.View.AsContiguous().CopyToCPU(state);
        _deviceZ!.View.AsContiguous().CopyToCPU(normalizer);
        Device.Ilgpu.Synchronize();
    }

    internal float[] HostS => _hostS!;
    internal float[] HostZ => _hostZ!;
    internal ArrayView<float> DeviceS => _deviceS!.View;
    internal ArrayView<float> DeviceZ => _deviceZ!.View;

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Releases the device memory. Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_deviceS is null) return;
        // Under the device's lease: kernels still queued on its stream may use the buffers.
        if (Device.IsDisposed) return; // the accelerator released them
        using var lease = Device.Use();
        Device.Ilgpu.Synchronize();
        _deviceS.Dispose();
        _deviceZ!.Dispose();
        _deviceS = _deviceZ = null;
    }
}
