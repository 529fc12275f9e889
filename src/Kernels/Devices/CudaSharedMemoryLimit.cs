using System.Runtime.InteropServices;
using ILGPU.Runtime.Cuda;

namespace Managed.Kernels.Devices;

/// <summary>
/// Lets a loaded CUDA kernel take more than 48 KB of dynamic shared memory per group: the
/// driver refuses such a launch ("invalid argument") until the function's
/// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES is raised, and ILGPU 1.5.3 has no call for
/// it. One call into the driver ILGPU itself has loaded (libcuda.so.1, nvcuda.dll on
/// Windows), on the function handle of the loaded kernel; no native code of ours.
/// </summary>
internal static unsafe class CudaSharedMemoryLimit
{
    /// <summary>Shared memory a group may take without the opt-in.</summary>
    public const int DefaultBytes = 48 * 1024;

    private const int MaxDynamicSharedSizeBytes = 8; // CUfunction_attribute

    private static readonly Lazy<nint> s_setAttribute = new(Resolve);

    /// <summary>Raises <paramref name="kernel"/>'s dynamic shared memory limit to
    /// <paramref name="bytes"/>; nothing below <see cref="DefaultBytes"/>. Throws with the
    /// driver's error code when the device cannot give that much.</summary>
    public static void Raise(CudaKernel kernel, int bytes)
    {
        if (bytes <= DefaultBytes) return;
        var set = (delegate* unmanaged<nint, int, int, int>)s_setAttribute.Value;
        int status = set(kernel.FunctionPtr, MaxDynamicSharedSizeBytes, bytes);
        if (status != 0)
            throw new InvalidOperationException($"cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_"
                + $"BYTES, {bytes}) failed with CUresult {status}: the device gives a group less "
                + "shared memory than this kernel needs.");
    }

    private static nint Resolve()
    {
        string name = OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1";
        var library = NativeLibrary.Load(name);
        return NativeLibrary.GetExport(library, "cuFuncSetAttribute");
    }
}
