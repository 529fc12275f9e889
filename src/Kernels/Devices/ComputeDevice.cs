using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Managed.Kernels.Devices;

/// <summary>
/// Where kernels run and memory lives: the host CPU (SIMD kernels) or one ILGPU accelerator
/// (a CUDA GPU, an OpenCL device, or ILGPU's CPU accelerator). A device owns its accelerator,
/// the memory allocated on it, a pooled workspace and the kernels loaded on it; kernel
/// families (attention, and later matmul, decode, linear) use it and add nothing to it.
/// <para>
/// Threads: a device may be used from several threads at once. Calls on an ILGPU device are
/// serialized (each holds the device while it validates, enqueues and, where it returns host
/// results, waits); host calls run concurrently. <see cref="Dispose"/> waits for calls in
/// progress, then releases everything; any later use of the device, or of memory or tensors on
/// it, throws <see cref="ObjectDisposedException"/>.
/// </para>
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    private readonly object _sync = new();
    private readonly Accelerator? _accelerator;
    private KernelCache? _kernels;
    private DeviceWorkspace? _workspace;
    private int _hostCalls;
    private volatile bool _disposed;

    private ComputeDevice(DeviceKind kind, int index, Accelerator? accelerator)
    {
        Kind = kind;
        Index = index;
        _accelerator = accelerator;
        if (accelerator is not null)
        {
            _kernels = new KernelCache(accelerator);
            _workspace = new DeviceWorkspace(accelerator);
        }
    }

    /// <summary>
    /// The host CPU, shared by the process: it holds no resources, so its
    /// <see cref="Dispose"/> does nothing. <see cref="Open(DeviceKind, int)"/> with
    /// <see cref="DeviceKind.Host"/> gives a device object of its own instead.
    /// </summary>
    public static ComputeDevice Host { get; } = new(DeviceKind.Host, 0, null) { _shared = true };

    private bool _shared;

    /// <summary>The kind (never Auto).</summary>
    public DeviceKind Kind { get; }

    /// <summary>The index among devices of this kind.</summary>
    public int Index { get; }

    /// <summary>True for the host CPU (spans are its memory; no accelerator).</summary>
    public bool IsHost => _accelerator is null;

    /// <summary>True after <see cref="Dispose"/>.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>The kind, the index and the device's own name.</summary>
    public string Name => _accelerator is null
        ? $"Host:0 CPU ({Environment.ProcessorCount} threads)"
        : $"{Kind}:{Index} {_accelerator.Name}{VendorNote}";

    private string VendorNote => _accelerator is CLAccelerator cl
        ? $" (vendor {cl.Vendor}, {cl.CLStdVersion}, sub-groups {cl.Capabilities.SubGroups})"
        : "";

    /// <summary>
    /// The ILGPU accelerator, for interop: buffers allocated on it can be passed to the view
    /// entry points of the kernel families. Null for the host. Do not dispose it: the device
    /// owns it.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    public Accelerator? Accelerator
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _accelerator;
        }
    }

    /// <summary>Every device this process can open: the host first, then CUDA, OpenCL and
    /// ILGPU CPU accelerator devices in index order.</summary>
    public static IReadOnlyList<DeviceInfo> List()
    {
        var list = new List<DeviceInfo>
        {
            new(DeviceKind.Host, 0, $"CPU ({Environment.ProcessorCount} threads)",
                GC.GetGCMemoryInfo().TotalAvailableMemoryBytes),
        };
        foreach (var kind in new[] { DeviceKind.Cuda, DeviceKind.OpenCL, DeviceKind.IlgpuCpu })
        {
            var devices = IlgpuDevices(kind);
            for (int i = 0; i < devices.Count; i++)
                list.Add(new(kind, i, devices[i].Name, devices[i].MemorySize));
        }
        return list;
    }

    /// <summary>
    /// Opens device <paramref name="index"/> of <paramref name="kind"/>; Auto opens the first
    /// CUDA device, else the first OpenCL device, else the host. Each call returns a new device
    /// object that the caller disposes. Kernels compiled for an earlier device object of the
    /// same kind and target are reused (see the remarks of <see cref="ComputeDevice"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The kind is not defined, or the index
    /// is negative.</exception>
    /// <exception cref="InvalidOperationException">No such device is present (the message
    /// says how many of that kind there are).</exception>
    public static ComputeDevice Open(DeviceKind kind = DeviceKind.Auto, int index = 0)
    {
        if (!Enum.IsDefined(kind))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown device kind.");
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        if (kind == DeviceKind.Auto)
        {
            foreach (var gpu in new[] { DeviceKind.Cuda, DeviceKind.OpenCL })
                if (IlgpuDevices(gpu).Count > 0) return Open(gpu);
            return new ComputeDevice(DeviceKind.Host, 0, null);
        }
        if (kind == DeviceKind.Host)
        {
            if (index != 0)
                throw new InvalidOperationException(
                    $"There is one Host device; got index {index}.");
            return new ComputeDevice(DeviceKind.Host, 0, null);
        }
        var devices = IlgpuDevices(kind);
        if (index >= devices.Count)
            throw new InvalidOperationException(devices.Count == 0
                ? $"No {kind} device is present."
                : $"{kind} device {index} is not present: there are {devices.Count} (0.."
                  + $"{devices.Count - 1}).");
        var context = IlgpuContexts.For(kind);
        return new ComputeDevice(kind, index, devices[index].CreateAccelerator(context));
    }

    private static IReadOnlyList<ILGPU.Runtime.Device> IlgpuDevices(DeviceKind kind)
    {
        try
        {
            var context = IlgpuContexts.For(kind);
            return kind switch
            {
                DeviceKind.Cuda => ToList(context.GetCudaDevices()),
                DeviceKind.OpenCL => ToList(context.GetCLDevices()),
                _ => ToList(context.GetCPUDevices()),
            };
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException
            or InvalidOperationException or NotSupportedException)
        {
            return []; // no driver or runtime for this kind on this machine
        }
    }

    private static List<ILGPU.Runtime.Device> ToList<T>(Context.DeviceCollection<T> devices)
        where T : ILGPU.Runtime.Device
    {
        var list = new List<ILGPU.Runtime.Device>(devices.Count);
        for (int i = 0; i < devices.Count; i++) list.Add(devices[i]);
        return list;
    }

    /// <summary>Waits until everything enqueued on the device has finished.</summary>
    /// <exception cref="ObjectDisposedException">The device is disposed.</exception>
    public void Synchronize()
    {
        using var use = Use();
        _accelerator?.Synchronize();
    }

    /// <summary>
    /// Holds the device for one call: throws if it is disposed; on an ILGPU device, serializes
    /// with other calls and with <see cref="Dispose"/>, and makes the accelerator current on
    /// this thread. Dispose the lease (a using) when the call has enqueued its work.
    /// </summary>
    internal Lease Use()
    {
        if (_accelerator is null)
        {
            Interlocked.Increment(ref _hostCalls);
            if (_disposed)
            {
                Interlocked.Decrement(ref _hostCalls);
                throw new ObjectDisposedException(nameof(ComputeDevice), $"{Name} is disposed.");
            }
            return new Lease(this, locked: false);
        }
        Monitor.Enter(_sync);
        if (_disposed)
        {
            Monitor.Exit(_sync);
            throw new ObjectDisposedException(nameof(ComputeDevice), $"{Name} is disposed.");
        }
        _accelerator.Bind();
        return new Lease(this, locked: true);
    }

    /// <summary>
    /// Whether kernels on this device can use warp (sub-group) shuffles. ILGPU 1.5.3's OpenCL
    /// code generator maps shuffles only through a table keyed by vendor (Intel sub-group
    /// built-ins); for any other vendor, PoCL's CPU device included, it throws even when the
    /// device has sub-groups. CUDA and ILGPU's CPU accelerator always can.
    /// </summary>
    internal bool SupportsWarpShuffles => _accelerator is not CLAccelerator cl
        || cl.Capabilities.SubGroups && cl.Vendor == CLDeviceVendor.Intel;

    /// <summary>The accelerator of an ILGPU device, for code that holds a lease.</summary>
    internal Accelerator Ilgpu => _accelerator
        ?? throw new InvalidOperationException($"{Name} has no ILGPU accelerator.");

    /// <summary>The loaded kernels of an ILGPU device.</summary>
    internal KernelCache Kernels => _kernels
        ?? throw new InvalidOperationException($"{Name} has no ILGPU accelerator.");

    /// <summary>The pooled device scratch of an ILGPU device (use under a lease).</summary>
    internal DeviceWorkspace Workspace => _workspace
        ?? throw new InvalidOperationException($"{Name} has no ILGPU accelerator.");

    /// <summary>Bytes of device memory the workspace holds (for tests).</summary>
    internal long WorkspaceBytes => _workspace?.Bytes ?? 0;

    /// <summary>Number of kernels loaded on this device (for tests).</summary>
    internal int LoadedKernelCount => _kernels?.Count ?? 0;

    /// <summary>Throws unless <paramref name="view"/> is memory of this device's accelerator
    /// (or empty).</summary>
    internal void CheckOwns<T>(ArrayView<T> view, string argument) where T : unmanaged
    {
        if (view.Length == 0) return;
        var owner = view.GetAccelerator();
        if (!ReferenceEquals(owner, _accelerator))
            throw new ArgumentException(
                $"{argument} is memory of {owner?.Name ?? "no accelerator"}, not of {Name}.",
                argument);
    }

    /// <summary>
    /// Waits for calls in progress, then releases the workspace, the loaded kernels, the
    /// accelerator and every buffer on it. Idempotent; does nothing on <see cref="Host"/>.
    /// </summary>
    public void Dispose()
    {
        if (_shared) return;
        if (_accelerator is null)
        {
            _disposed = true;
            var spin = new SpinWait();
            while (Volatile.Read(ref _hostCalls) > 0) spin.SpinOnce();
            return;
        }
        lock (_sync)
        {
            if (_disposed) return;
            _disposed = true;
            _accelerator.Synchronize();
            _workspace?.Dispose();
            _kernels?.Clear();
            _workspace = null;
            _kernels = null;
            _accelerator.Dispose();
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Name;

    /// <summary>A device held for one call; see <see cref="Use"/>.</summary>
    internal readonly ref struct Lease(ComputeDevice device, bool locked)
    {
        /// <summary>Releases the device.</summary>
        public void Dispose()
        {
            if (locked) Monitor.Exit(device._sync);
            else Interlocked.Decrement(ref device._hostCalls);
        }
    }
}
