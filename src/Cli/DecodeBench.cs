using System.Diagnostics;
using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Decode;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Cli;

/// <summary>
/// `bench --decode`: decode over contiguous and paged (16-row pages) KV caches for every storage
/// type, key count, query row count and head dim; GB/s counts the K and V bytes of the cache
/// read once (batch x kvHeads x keys x (D + Dv) x element size) per call, and "share" divides it
/// by the bandwidth measured in the same run: on the host a STREAM-like read (sums of a 1 GiB
/// array over all threads), on an ILGPU device a device-to-device copy of 1 GiB counted as bytes
/// read + written. Times are medians (<see cref="BenchCommand.Time"/>).
/// </summary>
internal static class DecodeBench
{
    public static int Run(CliOptions options, TextWriter output)
    {
        int heads = options.Heads, kvHeads = options.KvHeads;
        if (heads % kvHeads != 0)
            throw new UsageException($"--kv-heads {kvHeads} does not divide --heads {heads}");
        int[] rowsList = options.Rows ?? [1, 4];
        foreach (int r in rowsList)
            if (r > DecodeAttention.MaxQueryRows)
                throw new UsageException(
                    $"--rows {r} exceeds {DecodeAttention.MaxQueryRows} query rows per sequence");
        int[] keysList = options.Keys ?? [8192, 32768, 131072];
        DType[] storage = options.DTypes ?? [DType.Float, DType.Half, DType.BFloat16];
        using var device = ComputeDevice.Open(options.Device);
        double copy = device.IsHost ? HostReadBandwidth() : DeviceCopyBandwidth(device);
        output.WriteLine($"device: {device.Name}; "
            + (device.IsHost ? $"read bandwidth {copy:F1} GB/s (sums of 1 GiB, all threads)"
                : $"copy bandwidth {copy:F1} GB/s (device-to-device 1 GiB, read + written)"));
        output.WriteLine($"{"storage",-9} {"layout",-10} {"B",3} {"rows",4} {"Hq/Hkv",7} {"D",4} "
            + $"{"keys",7} {"splits",6} {"ms",9} {"GB/s",9} {"share",6}");
        using var csv = options.Output is null ? null : new StreamWriter(options.Output);
        csv?.WriteLine("storage,layout,batch,rows,heads,kv_heads,dim,keys,splits,ms,gbps,share");
        int?[] splitsList = options.Splits is { } given ? [.. given.Select(x => (int?)x)] : [null];
        foreach (var dtype in storage)
            foreach (int d in options.Dim)
                foreach (int keys in keysList)
                    foreach (bool paged in new[] { false, true })
                        foreach (int? splits in splitsList)
                        {
                            var results = dtype switch
                            {
                                DType.Half => Case<Half>(device, options.Batch, heads, kvHeads, d,
                                    keys, paged, rowsList, splits, DTypeOps.ToHalf),
                                DType.BFloat16 => Case<BFloat16>(device, options.Batch, heads,
                                    kvHeads, d, keys, paged, rowsList, splits,
                                    BFloat16.FromSingle),
                                _ => Case<float>(device, options.Batch, heads, kvHeads, d, keys,
                                    paged, rowsList, splits, x => x),
                            };
                            string type = dtype.Name();
                            foreach (var (rows, ms, gbps, parts) in results)
                            {
                                string layout = paged ? "paged-16" : "contiguous";
                                output.WriteLine($"{type,-9} {layout,-10} {options.Batch,3} "
                                    + $"{rows,4} {heads + "/" + kvHeads,7} {d,4} {keys,7} "
                                    + $"{parts,6} {ms,9:F4} {gbps,9:F1} {gbps / copy,6:P1}");
                                csv?.WriteLine($"{type},{layout},{options.Batch},{rows},{heads},"
                                    + $"{kvHeads},{d},{keys},{parts},{ms:F5},{gbps:F2},"
                                    + $"{gbps / copy:F4}");
                            }
                        }
        return 0;
    }

    private static List<(int Rows, double Ms, double GBps, int Parts)> Case<T>(ComputeDevice device,
        int batch, int heads, int kvHeads, int d, int keys, bool paged, int[] rowsList,
        int? splits, Func<float, T> narrow) where T : unmanaged
    {
        const int pageSize = 16;
        using var cache = paged
            ? KvCache<T>.Paged(device, batch, kvHeads, pageSize,
                batch * ((keys + pageSize - 1) / pageSize), (keys + pageSize - 1) / pageSize, d, d)
            : KvCache<T>.Contiguous(device, batch, kvHeads, keys, d, d);
        var rng = new Random(1);
        int chunk = Math.Min(keys, 4096);
        var block = new T[(long)batch * kvHeads * chunk * d];
        for (long i = 0; i < block.Length; i++) block[i] = narrow((float)(rng.NextDouble() * 2 - 1));
        for (int filled = 0; filled < keys; filled += chunk)
        {
            int n = Math.Min(chunk, keys - filled);
            cache.Append(block, block, chunk, Enumerable.Repeat(n, batch).ToArray());
        }
        double bytes = (double)batch * kvHeads * keys * (2.0 * d)
            * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        var options = new DecodeOptions { Splits = splits };
        var results = new List<(int, double, double, int)>();
        foreach (int rows in rowsList)
        {
            float[] q = BenchCommand.Fill(rng, (long)batch * heads * rows * d);
            var o = new float[(long)batch * heads * rows * d];
            double ms;
            if (device.IsHost)
                ms = BenchCommand.Time(() => DecodeAttention.Forward(cache, heads, rows, q, o,
                    default, default(NoScore), default(CausalMask), default(SoftmaxNormalizer),
                    options), () => { });
            else
            {
                var acc = device.Accelerator!;
                using var dq = acc.Allocate1D(q);
                using var dout = acc.Allocate1D<float>(o.Length);
                ms = BenchCommand.Time(() => DecodeAttention.Forward(cache, heads, rows, dq.View,
                    dout.View, default, default(NoScore), default(CausalMask),
                    default(SoftmaxNormalizer), options), acc.Synchronize, callsPerSample: 20);
            }
            results.Add((rows, ms, bytes / (ms * 1e6),
                splits ?? DecodeAttention.SplitsFor(cache, heads, rows)));
        }
        return results;
    }

    /// <summary>GB/s of summing a 1 GiB float array, split over all processors (median of 7).
    /// </summary>
    internal static double HostReadBandwidth()
    {
        var data = GC.AllocateUninitializedArray<float>(1 << 28);
        Parallel.For(0, Environment.ProcessorCount, t =>
        {
            int n = data.Length / Environment.ProcessorCount;
            data.AsSpan(t * n, n).Fill(1f);
        });
        int threads = Environment.ProcessorCount, part = data.Length / threads;
        double ms = BenchCommand.Time(() => Parallel.For(0, threads,
            t => TensorPrimitives.Sum<float>(data.AsSpan(t * part, part))), () => { }, 2.0);
        return (double)part * threads * sizeof(float) / (ms * 1e6);
    }

    /// <summary>GB/s (read + written) of a 1 GiB device-to-device copy (median).</summary>
    internal static double DeviceCopyBandwidth(ComputeDevice device)
    {
        var acc = device.Accelerator!;
        using var a = acc.Allocate1D<float>(1 << 28);
        using var b = acc.Allocate1D<float>(1 << 28);
        a.MemSetToZero();
        double ms = BenchCommand.Time(() => a.View.CopyTo(b.View), acc.Synchronize, 2.0);
        return 2.0 * a.LengthInBytes / (ms * 1e6);
    }
}
