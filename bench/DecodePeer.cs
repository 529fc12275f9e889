using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Managed.Bench.Onnx;
using Managed.Kernels.Decode;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Bench;

/// <summary>
/// `--decode`: our host decode (<see cref="DecodeAttention"/>, contiguous cache) against ONNX
/// Runtime's CPU com.microsoft GroupQueryAttention with past key/value on the same cache and
/// query rows (batch 1; the rows are the cache's last positions, causal among themselves).
/// Outputs are compared first (|ORT - ours| &lt;= 1e-4 + 1e-3 |ours| everywhere, or the row
/// fails); then both are timed interleaved (<see cref="DecodeTiming.Interleaved"/>). GB/s
/// counts the K and V bytes of the cache read once; share divides it by the read bandwidth
/// probed in the same run. ORT runs twice: past and present in one buffer (how a user decodes
/// step by step, the headline column) and apart (every call copies the past into the present).
/// Options: --keys 8192,65536 --rows 1,4 --heads 32 --kv-heads 8 --dim 128 --threads N
/// --storage float[,half] --skip-copy.
/// </summary>
public static class DecodePeer
{
    // GQA takes more than one new row with a past only at batch 1 (group_query_attention_helper).
    private const int Batch = 1;
    private const double Atol = 1e-4, Rtol = 1e-3;

    private sealed record Settings(int[] Keys, int[] Rows, int Heads, int KvHeads, int Dim,
        int Threads, string[] Storage, bool Copy);

    private sealed record Row(string Storage, int Keys, int Rows, double Bytes, double Ours,
        double Ort, double? OrtCopy, double MaxError, double? MaxErrorCopy, bool Ok, string Note);

    /// <summary>Runs the comparison and prints the Markdown table; 1 if a row failed.</summary>
    public static int Run(string[] args)
    {
        var s = Parse(args);
        string load0 = Harness.LoadAverage();
        Console.WriteLine($"ORT {OrtDecode<float>.Version}; probing read bandwidth on "
            + $"{s.Threads} threads...");
        double bandwidth = DecodeTiming.ReadBandwidth(s.Threads);
        GC.Collect();
        Console.WriteLine($"read bandwidth {bandwidth:F1} GB/s");
        var rows = new List<Row>();
        foreach (string storage in s.Storage)
            foreach (int keys in s.Keys)
                rows.AddRange(storage == "half"
                    ? Case<Half>(s, storage, keys, x => (Half)x, x => (float)x)
                    : Case<float>(s, storage, keys, x => x, x => x));
        Console.WriteLine();
        Console.WriteLine(Table(s, args, bandwidth, load0, rows));
        return rows.All(r => r.Ok) ? 0 : 1;
    }

    private static List<Row> Case<T>(Settings s, string storage, int keys, Func<float, T> narrow,
        Func<T, float> widen) where T : unmanaged
    {
        var rng = new Random(keys);
        int kvHeads = s.KvHeads, d = s.Dim;
        T[] k = Random(rng, Batch * kvHeads * keys * d, narrow);
        T[] v = Random(rng, Batch * kvHeads * keys * d, narrow);
        using var cache = KvCache<T>.Contiguous(ComputeDevice.Host, Batch, kvHeads, keys, d, d);
        Fill(cache, k, v, keys);
        double bytes = (double)Batch * kvHeads * keys * 2 * d * Unsafe.SizeOf<T>();
        var options = new DecodeOptions { MaxDegreeOfParallelism = s.Threads };
        WarmUp<T>(s, narrow, options);
        var results = new List<Row>();
        foreach (int rows in s.Rows)
        {
            GC.Collect();
            // The query as stored (T), and its exact float values for our float query input.
            T[] qStored = Random(rng, Batch * s.Heads * rows * d, narrow);
            float[] q = Array.ConvertAll(qStored, x => widen(x));
            float[] ours = new float[q.Length];
            void Ours() => DecodeAttention.Forward(cache, s.Heads, rows, q, ours,
                Span<float>.Empty, default(NoScore), default(CausalMask),
                default(SoftmaxNormalizer), options);
            using var shared = new OrtDecode<T>(Batch, s.Heads, kvHeads, rows, keys, d, k, v,
                qStored, shared: true, s.Threads);
            using var copying = s.Copy ? new OrtDecode<T>(Batch, s.Heads, kvHeads, rows, keys,
                d, k, v, qStored, shared: false, s.Threads) : null;
            Ours();
            // What ORT writes per call: NaN where it must write, one call, then the present
            // must equal the cache again (shared: the new rows only; copying: all of it).
            shared.PoisonPresent();
            shared.Run();
            bool inPlace = shared.PresentEquals(k, v);
            double err = MaxError(shared.OutputBnsh(), ours, out bool ok);
            double? errCopy = null;
            bool copied = true;
            if (copying is not null)
            {
                copying.PoisonPresent();
                copying.Run();
                copied = copying.PresentEquals(k, v);
                errCopy = MaxError(copying.OutputBnsh(), ours, out bool okCopy);
                ok &= okCopy;
            }
            string note = (inPlace ? "shared: ORT wrote the new rows into the cache"
                    : "shared: present != cache after a call")
                + (copying is null ? "" : copied ? "; copying: present rebuilt from the past"
                    : "; copying: present != cache after a call");
            Console.WriteLine($"{storage} keys {keys} rows {rows}: max |ORT - ours| {F(err)}"
                + (errCopy is { } e ? $" (copying {F(e)})" : "") + $"; {note}");
            if (!ok)
            {
                Console.Error.WriteLine($"FAIL: {storage} keys {keys} rows {rows}: ORT's output "
                    + $"differs from ours beyond {Atol} + {Rtol} |ours| (max {F(err)}"
                    + (errCopy is { } ec ? $", copying {F(ec)}" : "") + "); not timed.");
                results.Add(new(storage, keys, rows, bytes, double.NaN, double.NaN, null, err,
                    errCopy, false, note));
                continue;
            }
            Action[] runs = copying is null ? [Ours, shared.Run]
                : [Ours, shared.Run, copying.Run];
            double[] t = DecodeTiming.Interleaved(runs, minRuns: 12, seconds: 1.0);
            results.Add(new(storage, keys, rows, bytes, t[0], t[1],
                copying is null ? null : t[2], err, errCopy, inPlace && copied, note));
            Console.WriteLine($"  ours {t[0] * 1e3:F3} ms, ORT {t[1] * 1e3:F3} ms"
                + (copying is null ? "" : $", ORT copying {t[2] * 1e3:F3} ms"));
        }
        return results;
    }

    // Tiered compilation promotes our generic decode after 30 calls and a background compile;
    // a long cache's warm-up has too few calls, so each storage type gets 60 short ones first.
    private static void WarmUp<T>(Settings s, Func<float, T> narrow, DecodeOptions options)
        where T : unmanaged
    {
        if (!Warmed.Add(typeof(T))) return;
        const int keys = 256;
        var rng = new Random(0);
        int n = Batch * s.KvHeads * keys * s.Dim;
        using var cache = KvCache<T>.Contiguous(ComputeDevice.Host, Batch, s.KvHeads, keys,
            s.Dim, s.Dim);
        Fill(cache, Random(rng, n, narrow), Random(rng, n, narrow), keys);
        foreach (int rows in s.Rows)
        {
            var q = new float[Batch * s.Heads * rows * s.Dim];
            var o = new float[q.Length];
            for (int i = 0; i < 60; i++)
                DecodeAttention.Forward(cache, s.Heads, rows, q, o, Span<float>.Empty,
                    default(NoScore), default(CausalMask), default(SoftmaxNormalizer), options);
        }
        Thread.Sleep(500); // the tier-1 compile runs in the background
    }

    private static readonly HashSet<Type> Warmed = [];

    // Appends (batch 1) k, v (kvHeads, keys, d) to the cache in chunks of 4096 rows.
    private static void Fill<T>(KvCache<T> cache, T[] k, T[] v, int keys) where T : unmanaged
    {
        int kvHeads = cache.KvHeads, d = cache.HeadDim, chunk = Math.Min(keys, 4096);
        var kc = new T[kvHeads * chunk * d];
        var vc = new T[kvHeads * chunk * d];
        for (int start = 0; start < keys; start += chunk)
        {
            int n = Math.Min(chunk, keys - start);
            for (int h = 0; h < kvHeads; h++)
            {
                k.AsSpan((h * keys + start) * d, n * d).CopyTo(kc.AsSpan(h * n * d));
                v.AsSpan((h * keys + start) * d, n * d).CopyTo(vc.AsSpan(h * n * d));
            }
            cache.Append(kc.AsSpan(0, kvHeads * n * d), vc.AsSpan(0, kvHeads * n * d), n, [n]);
        }
    }

    private static T[] Random<T>(Random rng, int length, Func<float, T> narrow)
    {
        var a = new T[length];
        for (int i = 0; i < a.Length; i++) a[i] = narrow((float)(rng.NextDouble() * 2 - 1));
        return a;
    }

    // Max |a - b|; ok: every element within Atol + Rtol |b| (a NaN fails).
    private static double MaxError(float[] a, float[] b, out bool ok)
    {
        double max = 0;
        ok = true;
        for (int i = 0; i < a.Length; i++)
        {
            double diff = Math.Abs((double)a[i] - b[i]);
            if (!(diff <= Atol + Rtol * Math.Abs(b[i]))) ok = false;
            max = double.IsNaN(diff) ? double.NaN : Math.Max(max, diff);
        }
        return max;
    }

    private static string Table(Settings s, string[] args, double bandwidth, string load0,
        List<Row> rows)
    {
        var sb = new StringBuilder();
        string Rate(double bytes, double seconds)
        {
            double gbps = bytes / (seconds * 1e9);
            return double.IsNaN(seconds) ? "n/a" : $"{gbps:F1} ({gbps / bandwidth:P0})";
        }
        sb.AppendLine($"## CPU decode: ours vs ONNX Runtime GroupQueryAttention, "
            + $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC").AppendLine();
        sb.AppendLine("`dotnet run -c Release --project bench -p:LibraryTargetFrameworks=net10.0 "
            + $"-- --decode {string.Join(' ', args)}`").AppendLine();
        sb.AppendLine($"{Harness.CpuModel()}, {s.Threads} threads ({Environment.ProcessorCount} "
            + $"logical processors), load average {load0} at start, {Harness.LoadAverage()} at "
            + $"end. ORT "
            + $"{OrtDecode<float>.Version} CPU EP, com.microsoft GroupQueryAttention: query "
            + "(B, S, H·D), new K/V (B, S, KvH·D), past/present (B, KvH, T, D), seqlens_k, "
            + $"total_sequence_length; IntraOpNumThreads {s.Threads}. Batch {Batch}, "
            + $"H/KvH {s.Heads}/{s.KvHeads}, D {s.Dim}, S = rows. GB/s: K+V bytes of the cache "
            + $"read once / median time; (share) of the read bandwidth {bandwidth:F1} GB/s "
            + $"(sums of 1 GiB on {s.Threads} threads). ORT/ours: ORT GB/s ÷ ours. ORT: past "
            + "and present one buffer; ORT copying: apart.").AppendLine();
        sb.AppendLine("| storage | keys | rows | ours ms | ours GB/s | ORT ms | ORT GB/s "
            + "| ORT/ours | ORT copying ms | ORT copying GB/s | max abs err |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            string copy = r.OrtCopy is { } c ? $"{c * 1e3:F2} | {Rate(r.Bytes, c)}" : "- | -";
            string err = F(r.MaxError) + (r.MaxErrorCopy is { } e ? $" / {F(e)}" : "")
                + (r.Ok ? "" : " **FAIL**");
            sb.AppendLine($"| {r.Storage} | {r.Keys} | {r.Rows} | {r.Ours * 1e3:F2} | "
                + $"{Rate(r.Bytes, r.Ours)} | {r.Ort * 1e3:F2} | {Rate(r.Bytes, r.Ort)} | "
                + $"{r.Ours / r.Ort:F2} | {copy} | {err} |");
        }
        // Each row checked what ORT writes (Case); one line when every row saw the same.
        sb.AppendLine();
        foreach (string note in rows.Select(r => r.Note).Distinct())
            sb.AppendLine($"- {string.Join(", ", rows.Where(r => r.Note == note)
                .Select(r => $"{r.Storage} {r.Keys}/{r.Rows}"))}: {note}.");
        return sb.ToString();
    }

    private static string F(double x) => x.ToString("0.0E+0", CultureInfo.InvariantCulture);

    private static Settings Parse(string[] args)
    {
        string? Option(string name)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        }
        int[] Ints(string name, int[] fallback) =>
            Option(name)?.Split(',').Select(int.Parse).ToArray() ?? fallback;
        var s = new Settings(Ints("--keys", [8192, 65536]), Ints("--rows", [1, 4]),
            Ints("--heads", [32])[0], Ints("--kv-heads", [8])[0], Ints("--dim", [128])[0],
            Ints("--threads", [Environment.ProcessorCount])[0],
            Option("--storage")?.Split(',') ?? ["float", "half"], !args.Contains("--skip-copy"));
        if (s.Heads % s.KvHeads != 0)
            throw new ArgumentException(
                $"--kv-heads {s.KvHeads} does not divide --heads {s.Heads}");
        foreach (string t in s.Storage)
            if (t is not ("float" or "half"))
                throw new ArgumentException($"--storage takes float and half, not {t}");
        foreach (int r in s.Rows)
            if (r < 1 || r > DecodeAttention.MaxQueryRows || s.Keys.Any(k => k <= r))
                throw new ArgumentException($"--rows {r}: 1 to {DecodeAttention.MaxQueryRows}, "
                    + "fewer than every --keys");
        return s;
    }
}
