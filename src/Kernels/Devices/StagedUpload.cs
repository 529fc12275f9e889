using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Managed.Kernels.Devices;

/// <summary>
/// Host-to-device copies of small host state (lengths, counts, token ids) that do not wait
/// for the device. ILGPU's <c>CopyFromCPU</c> synchronizes the stream after each copy, so a
/// model's decode step, which updates each layer's cache lengths, drained the GPU's queue
/// once per layer. On CUDA a copy from pageable host memory (<c>cuMemcpyHtoDAsync</c>)
/// returns once the driver has staged the bytes: the source may change right after the
/// call, and the copy runs in stream order after the kernels queued before it. Other
/// backends may read the source later, so there the copy stays synchronous.
/// </summary>
internal static class StagedUpload
{
    /// <summary>target[..source.Length] = source, in stream order.</summary>
    public static unsafe void Copy<T>(Accelerator accelerator, ReadOnlySpan<T> source,
        ArrayView<T> target)
        where T : unmanaged
    {
        if (source.IsEmpty) return;
        var destination = target.SubView(0, source.Length);
        if (accelerator.AcceleratorType != AcceleratorType.Cuda)
        {
            destination.CopyFromCPU(source);
            return;
        }
        // Pinned for the call only: the driver has copied the bytes when it returns.
        fixed (T* first = source)
            destination.CopyFromCPUUnsafeAsync(accelerator.DefaultStream,
                ref Unsafe.AsRef<T>(first), source.Length);
    }
}
