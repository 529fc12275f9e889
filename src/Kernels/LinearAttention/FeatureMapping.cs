using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;

namespace Managed.Kernels.LinearAttention;

internal delegate void FeatureLauncher<TMap>(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> x, ArrayView<float> phi, FeatureParams p, TMap map)
    where TMap : struct, IFeatureMap;

/// <summary>The sizes of one feature-map launch.</summary>
internal readonly struct FeatureParams(int heads, int length, int dim, int features,
    int firstPosition, long rows)
{
    public readonly int Heads = heads, Length = length, Dim = dim, Features = features,
        FirstPosition = firstPosition;
    public readonly long Rows = rows;
}

/// <summary>
/// Applies a feature map to rows: x (batch, heads, length, dim) becomes phi (batch, heads,
/// length, F), row n of a sequence at position firstPosition + n. One kernel for every map
/// (generic over the map struct): a thread per (row, feature) on ILGPU, a loop over rows
/// (split across processors) on the host.
/// </summary>
public static class FeatureMapping
{
    private const int Threads = 128;

    /// <summary>phi = map(x) on host spans (on an ILGPU device staged through its workspace;
    /// the call waits).</summary>
    /// <exception cref="ArgumentException">A length disagrees with the sizes, a size is not
    /// positive, the map's parameters or tables do not fit (dim, heads) or live on the other
    /// side; thrown before anything is written.</exception>
    public static unsafe void Apply<TMap>(ComputeDevice device, TMap map, int batch, int heads,
        int length, int dim, ReadOnlySpan<float> x, Span<float> phi, int firstPosition = 0)
        where TMap : struct, IFeatureMap
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        int features = Validate(device, map, batch, heads, length, dim, x.Length, phi.Length,
            firstPosition);
        if (phi.Overlaps(x))
            throw new ArgumentException("phi must not overlap x.", nameof(phi));
        long rows = (long)batch * heads * length;
        if (device.IsHost)
        {
            fixed (float* px = x, pphi = phi)
            {
                var job = new HostJob<TMap>(map, px, pphi, heads, length, dim, features,
                    firstPosition, (int)x.Length);
                int threads = (int)Math.Min(Environment.ProcessorCount, rows);
                if (rows * features * dim < 1 << 16 || threads <= 1)
                    for (int r = 0; r < rows; r++) job.Row(r);
                else
                    Parallel.For(0, (int)rows, new ParallelOptions { MaxDegreeOfParallelism = threads },
                        job.Row);
            }
            return;
        }
        var ws = device.Workspace;
        var dx = ws.Get<float>(0, x.Length);
        var dphi = ws.Get<float>(1, phi.Length);
        dx.CopyFromCPU(x);
        RunIlgpu(device, map, dx, dphi, new FeatureParams(heads, length, dim, features,
            firstPosition, rows));
        dphi.CopyToCPU(phi);
        device.Ilgpu.Synchronize();
    }

    /// <summary>phi = map(x) on views of the device's accelerator, enqueued on its stream.
    /// Otherwise as the span overload.</summary>
    /// <exception cref="ArgumentException">As the span overload, the device is the host, or a
    /// view is memory of another accelerator.</exception>
    public static void Apply<TMap>(ComputeDevice device, TMap map, int batch, int heads,
        int length, int dim, ArrayView<float> x, ArrayView<float> phi, int firstPosition = 0)
        where TMap : struct, IFeatureMap
    {
        ArgumentNullException.ThrowIfNull(device);
        using var lease = device.Use();
        if (device.IsHost)
            throw new ArgumentException(
                "The host has no ILGPU views: pass spans, or open an ILGPU device.",
                nameof(device));
        int features = Validate(device, map, batch, heads, length, dim, x.Length, phi.Length,
            firstPosition);
        device.CheckOwns(x, nameof(x));
        device.CheckOwns(phi, nameof(phi));
        RunIlgpu(device, map, x, phi, new FeatureParams(heads, length, dim, features,
            firstPosition, (long)batch * heads * length));
    }

    private static int Validate<TMap>(ComputeDevice device, TMap map, int batch, int heads,
        int length, int dim, long xLength, long phiLength, int firstPosition)
        where TMap : struct, IFeatureMap
    {
        Positive(batch, nameof(batch));
        Positive(heads, nameof(heads));
        Positive(length, nameof(length));
        Positive(dim, nameof(dim));
        if (firstPosition < 0)
            throw new ArgumentException($"firstPosition must not be negative, got {firstPosition}.",
                nameof(firstPosition));
        VariantChecks.CheckTableSide<TMap>(!device.IsHost, nameof(map));
        if (map.ParameterError(dim, heads) is { } error) throw new ArgumentException(error, nameof(map));
        if (!device.IsHost) TableOwnership.Check(map, device.Ilgpu, nameof(map));
        int features = map.Features(dim);
        long rows = (long)batch * heads * length;
        if (xLength != rows * dim)
            throw new ArgumentException($"x has {xLength} elements; expected {rows * dim} = "
                + $"batch {batch} x heads {heads} x length {length} x dim {dim}.", "x");
        if (phiLength != rows * features)
            throw new ArgumentException($"phi has {phiLength} elements; expected {rows * features}"
                + $" = batch {batch} x heads {heads} x length {length} x features {features}.", "phi");
        if (rows * Math.Max(dim, features) > int.MaxValue)
            throw new ArgumentException($"{rows} rows of {Math.Max(dim, features)} exceed "
                + $"{int.MaxValue} elements.", "x");
        return features;
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} must be positive, got {value}.", name);
    }

    private static void RunIlgpu<TMap>(ComputeDevice device, TMap map, ArrayView<float> x,
        ArrayView<float> phi, FeatureParams p)
        where TMap : struct, IFeatureMap
    {
        long work = p.Rows * p.Features;
        var config = new KernelConfig(checked((int)((work + Threads - 1) / Threads)), Threads);
        var launch = device.Kernels.Get<FeatureLauncher<TMap>>(Methods<TMap>.Kernel);
        launch(device.Ilgpu.DefaultStream, config, x, phi, p, map);
    }

    /// <summary>One thread per (row, feature).</summary>
    internal static void Kernel<TMap>(ArrayView<float> x, ArrayView<float> phi, FeatureParams p,
        TMap map)
        where TMap : struct, IFeatureMap
    {
        long e = (long)Grid.IdxX * Threads + Group.IdxX;
        if (e >= p.Rows * p.Features) return;
        long row = e / p.Features;
        int f = (int)(e - row * p.Features);
        int head = (int)(row / p.Length % p.Heads), position = p.FirstPosition + (int)(row % p.Length);
        phi[e] = map.Feature(new DeviceTable<float>(x), (int)(row * p.Dim), p.Dim, head, position, f);
    }

    internal static class Methods<TMap> where TMap : struct, IFeatureMap
    {
        public static readonly MethodInfo Kernel = typeof(FeatureMapping)
            .GetMethod(nameof(FeatureMapping.Kernel), BindingFlags.Static | BindingFlags.NonPublic)!
            .MakeGenericMethod(typeof(TMap));
    }

    private sealed unsafe class HostJob<TMap>(TMap map, float* x, float* phi, int heads,
        int length, int dim, int features, int firstPosition, int xLength)
        where TMap : struct, IFeatureMap
    {
        private readonly HostTable<float> _x = HostTable<float>.FromPointer(x, xLength);

        public void Row(int row)
        {
            int head = row / length % heads, position = firstPosition + row % length;
            float* target = phi + (long)row * features;
            for (int f = 0; f < features; f++)
                target[f] = map.Feature(_x, row * dim, dim, head, position, f);
        }
    }
}
