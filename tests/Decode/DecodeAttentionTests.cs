using Managed.Kernels.Attention;
using Managed.Kernels.Decode;
using Managed.Kernels.Decode.Policies;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Xunit;
using Half = System.Half;

namespace Managed.Tests.Decode;

/// <summary>
/// Decode over contiguous and paged KV caches on the host and the ILGPU CPU accelerator,
/// against the fp64 reference on the values the cache holds (rounded to its storage type):
/// query rows 1 to 16, GQA ratios 1 to 8, lengths that are not multiples of the page or part
/// size, length 1 and 0; paged equals contiguous bit for bit; every split count agrees;
/// token-by-token decode equals one prefill; a bad append changes nothing; keys outside the
/// mask are never read.
/// </summary>
public sealed class DecodeAttentionTests
{
    public static TheoryData<DeviceKind> Devices() => new() { DeviceKind.Host, DeviceKind.IlgpuCpu };

    private static ComputeDevice Open(DeviceKind kind) =>
        kind == DeviceKind.Host ? ComputeDevice.Host : ComputeDevice.Open(kind);

    private const double Atol = 2e-5, Rtol = 1e-4;

    /// <summary>Random K and V rows (batch, kvHeads, rows, dim) rounded to the storage type,
    /// as floats and as storage.</summary>
    private static (float[] Wide, T[] Stored) Data<T>(int n, int seed, Func<float, T> narrow,
        Func<T, float> widen)
    {
        var rng = new Random(seed);
        var stored = new T[n];
        var wide = new float[n];
        for (int i = 0; i < n; i++)
        {
            stored[i] = narrow((float)(rng.NextDouble() * 2 - 1));
            wide[i] = widen(stored[i]);
        }
        return (wide, stored);
    }

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>A cache filled with per-sequence lengths from (batch, kvHeads, maxLen, dim)
    /// rows, in two appends (the second of up to 5 rows per sequence).</summary>
    private static KvCache<T> Fill<T>(ComputeDevice device, bool paged, int batch, int kvHeads,
        int d, int dv, int[] lengths, T[] k, T[] v, int maxLen) where T : unmanaged
    {
        var cache = paged
            ? KvCache<T>.Paged(device, batch, kvHeads, pageSize: 16, pages: batch * (maxLen / 16 + 2),
                maxPagesPerSequence: maxLen / 16 + 2, d, dv)
            : KvCache<T>.Contiguous(device, batch, kvHeads, maxLen + 3, d, dv);
        int[] second = lengths.Select(n => Math.Min(n, 5)).ToArray();
        int[] first = lengths.Zip(second, (n, s) => n - s).ToArray();
        AppendRows(cache, k, v, maxLen, 0, first);
        AppendRows(cache, k, v, maxLen, first, second);
        return cache;
    }

    private static void AppendRows<T>(KvCache<T> cache, T[] k, T[] v, int maxLen, int[] from,
        int[] counts) where T : unmanaged
    {
        int b = cache.Batch, h = cache.KvHeads, d = cache.HeadDim, dv = cache.ValueDim;
        int rows = Math.Max(1, counts.Max());
        var ks = new T[b * h * rows * d];
        var vs = new T[b * h * rows * dv];
        for (int s = 0; s < b; s++)
            for (int j = 0; j < h; j++)
                for (int i = 0; i < counts[s]; i++)
                {
                    Array.Copy(k, ((s * h + j) * maxLen + from[s] + i) * d, ks, ((s * h + j) * rows + i) * d, d);
                    Array.Copy(v, ((s * h + j) * maxLen + from[s] + i) * dv, vs, ((s * h + j) * rows + i) * dv, dv);
                }
        cache.Append(ks, vs, rows, counts);
    }

    private static void AppendRows<T>(KvCache<T> cache, T[] k, T[] v, int maxLen, int from,
        int[] counts) where T : unmanaged =>
        AppendRows(cache, k, v, maxLen, Enumerable.Repeat(from, cache.Batch).ToArray(), counts);

    /// <summary>The fp64 reference of one sequence's decode rows: its keys [0, length), its
    /// rows at positions length - rows + r (bottom-right alignment).</summary>
    private static (double[] O, double[] Lse) Reference<TScore, TMask>(float[] q, float[] k,
        float[] v, int b, int heads, int kvHeads, int rows, int length, int maxLen, int d, int dv,
        TScore score, TMask mask)
        where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
    {
        if (length == 0)
            return (new double[heads * rows * dv],
                Enumerable.Repeat(double.NegativeInfinity, heads * rows).ToArray());
        var shape = new AttentionShape(1, heads, kvHeads, rows, length, d, dv);
        var qb = q.AsSpan(b * heads * rows * d, heads * rows * d).ToArray();
        var kb = new float[kvHeads * length * d];
        var vb = new float[kvHeads * length * dv];
        for (int j = 0; j < kvHeads; j++)
        {
            Array.Copy(k, (b * kvHeads + j) * maxLen * d, kb, j * length * d, length * d);
            Array.Copy(v, (b * kvHeads + j) * maxLen * dv, vb, j * length * dv, length * dv);
        }
        return ReferenceAttention.Forward(shape, qb, kb, vb, score, mask, default(SoftmaxNormalizer));
    }

    private static void AssertClose(float[] actual, float[] lse, double[][] refO,
        double[][] refLse, int heads, int rows, int dv, string what)
    {
        for (int b = 0; b < refO.Length; b++)
        {
            for (int i = 0; i < refO[b].Length; i++)
            {
                double e = refO[b][i], a = actual[b * heads * rows * dv + i];
                Assert.True(Math.Abs(a - e) <= Atol + Rtol * Math.Abs(e),
                    $"{what}: sequence {b} output {i}: {a} vs fp64 {e}");
            }
            for (int i = 0; i < refLse[b].Length; i++)
            {
                double e = refLse[b][i], a = lse[b * heads * rows + i];
                if (double.IsNegativeInfinity(e)) Assert.Equal(float.NegativeInfinity, (float)a);
                else Assert.True(Math.Abs(a - e) <= Atol + Rtol * Math.Abs(e),
                    $"{what}: sequence {b} lse {i}: {a} vs fp64 {e}");
            }
        }
    }

    public static TheoryData<DeviceKind, string, bool, int, int> Cases()
    {
        var data = new TheoryData<DeviceKind, string, bool, int, int>();
        foreach (var kind in new[] { DeviceKind.Host, DeviceKind.IlgpuCpu })
            foreach (var storage in new[] { "float", "half", "bfloat16" })
                foreach (bool paged in new[] { false, true })
                {
                    data.Add(kind, storage, paged, 1, 4);   // one row, GQA 4
                    data.Add(kind, storage, paged, 4, 8);   // speculative rows, GQA 8
                }
        data.Add(DeviceKind.Host, "float", false, 16, 1);
        data.Add(DeviceKind.IlgpuCpu, "float", true, 16, 2);
        return data;
    }

    /// <summary>Decode against fp64 for each device, storage type, layout, row count and GQA
    /// ratio; lengths 77, 1, 0 and 130 (not multiples of the page size 16 or the parts).</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void DecodeMatchesReference(DeviceKind kind, string storage, bool paged, int rows,
        int group)
    {
        switch (storage)
        {
            case "half":
                Run<Half>(kind, paged, rows, group, x => (Half)x, x => (float)x);
                break;
            case "bfloat16":
                Run<BFloat16>(kind, paged, rows, group, BFloat16.FromSingle, BFloat16.ToSingle);
                break;
            default:
                Run<float>(kind, paged, rows, group, x => x, x => x);
                break;
        }
    }

    /// <summary>Each shape class of the ILGPU kernel (dims per lane 4, 8, 16; 8 or 16 lanes
    /// per key; rows shorter than the lanes cover; word and element loads) against fp64.
    /// </summary>
    [Theory]
    [InlineData("half", 20, 12)]      // 4 dims per lane, element loads (40-byte rows)
    [InlineData("half", 64, 64)]      // 8 dims per lane, 16-byte words
    [InlineData("float", 96, 80)]     // 16 dims per lane, lanes past the rows
    [InlineData("bfloat16", 200, 256)] // 16 lanes per key, element loads
    [InlineData("float", 256, 128)]   // 16 lanes per key, words
    public void DecodeShapeClassesMatchReference(string storage, int d, int dv)
    {
        switch (storage)
        {
            case "half":
                Run<Half>(DeviceKind.IlgpuCpu, true, 2, 2, x => (Half)x, x => (float)x, d, dv);
                break;
            case "bfloat16":
                Run<BFloat16>(DeviceKind.IlgpuCpu, false, 1, 4, BFloat16.FromSingle,
                    BFloat16.ToSingle, d, dv);
                break;
            default:
                Run<float>(DeviceKind.IlgpuCpu, false, 3, 2, x => x, x => x, d, dv);
                break;
        }
    }

    /// <summary>The tensor-core kernels (their mma emulated on the ILGPU CPU accelerator; on
    /// CUDA `check` runs them) against fp64: fp16 and bf16, contiguous and paged, head and
    /// value dims of 64 and 128; 4 and 6 vectors per block (keys as the mma's rows), 12 and 16
    /// (vectors as its rows).</summary>
    [Theory]
    [InlineData("half", false, 4, 4, 128, 64)]
    [InlineData("bfloat16", false, 3, 4, 64, 64)]
    [InlineData("bfloat16", true, 1, 4, 64, 128)]
    [InlineData("half", true, 2, 3, 128, 128)]
    public void TensorCoreDecodeMatchesReference(string storage, bool paged, int rows, int group,
        int d, int dv)
    {
        if (storage == "half")
            Run<Half>(DeviceKind.IlgpuCpu, paged, rows, group, x => (Half)x, x => (float)x, d,
                dv, emulate: true);
        else
            Run<BFloat16>(DeviceKind.IlgpuCpu, paged, rows, group, BFloat16.FromSingle,
                BFloat16.ToSingle, d, dv, emulate: true);
    }

    private static void Run<T>(DeviceKind kind, bool paged, int rows, int group,
        Func<float, T> narrow, Func<T, float> widen, int d = 32, int dv = 24,
        bool emulate = false, float queryScale = 1f) where T : unmanaged
    {
        using var device = Open(kind);
        const int batch = 4, kvHeads = 2, maxLen = 130;
        int heads = kvHeads * group;
        int[] lengths = [77, 1, 0, 130];
        var (kw, ks) = Data(batch * kvHeads * maxLen * d, 1, narrow, widen);
        var (vw, vs) = Data(batch * kvHeads * maxLen * dv, 2, narrow, widen);
        float[] q = Random(batch * heads * rows * d, 3).Select(x => x * queryScale).ToArray();
        using var cache = Fill(device, paged, batch, kvHeads, d, dv, lengths, ks, vs, maxLen);
        Assert.Equal(lengths, cache.Lengths());
        var o = new float[batch * heads * rows * dv];
        var lse = new float[batch * heads * rows];
        var score = new SoftcapScore(4f);
        DecodeAttention.Forward(cache, heads, rows, q, o, lse, score, default(CausalMask),
            default(SoftmaxNormalizer),
            new DecodeOptions { Splits = 3, EmulateTensorCores = emulate });
        var refs = Enumerable.Range(0, batch).Select(b => Reference(q, kw, vw, b, heads, kvHeads,
            rows, lengths[b], maxLen, d, dv, score, default(CausalMask))).ToArray();
        AssertClose(o, lse, refs.Select(r => r.O).ToArray(), refs.Select(r => r.Lse).ToArray(),
            heads, rows, dv, $"{kind} {typeof(T).Name} paged={paged} rows={rows} G={group}");
    }

    /// <summary>The tensor-core kernel over fp16 (emulated): queries of large and of tiny
    /// magnitude keep fp32 accuracy (each vector is scaled into fp16's range before it is
    /// split), and NaN planted in V rows outside sinks + window does not reach the output
    /// (the tiles the mask cuts hold such rows; their V words are zeroed); contiguous, and
    /// paged with pages shorter than a tile.</summary>
    [Theory]
    [InlineData(30f, 0)]
    [InlineData(1e-3f, 8)] // 8-row pages: every 16-key tile spans two pages
    public void TensorCoreDecodeScalesQueriesAndSkipsMaskedNaN(float queryScale, int pageSize)
    {
        using var device = Open(DeviceKind.IlgpuCpu);
        const int heads = 4, n = 150, d = 64, sinks = 4, window = 40;
        var (k, ks) = Data(n * d, 13, x => (Half)x, x => (float)x);
        var (v, vs) = Data(n * d, 14, x => (Half)x, x => (float)x);
        float[] q = Random(heads * d, 15).Select(x => x * queryScale).ToArray();
        for (int t = sinks + 3; t < n - window - 5; t++)
            vs[t * d + 1] = Half.NaN;
        using var cache = pageSize == 0 ? KvCache<Half>.Contiguous(device, 1, 1, n, d, d)
            : KvCache<Half>.Paged(device, 1, 1, pageSize, n / pageSize + 1, n / pageSize + 1, d,
                d);
        cache.Append(ks, vs, n, [n]);
        var o = new float[heads * d];
        var mask = new SinkWindowMask(sinks, window);
        DecodeAttention.Forward(cache, heads, 1, q, o, default, default(NoScore), mask,
            default(SoftmaxNormalizer), new DecodeOptions { EmulateTensorCores = true });
        var (refO, _) = ReferenceAttention.Forward(new AttentionShape(1, heads, 1, 1, n, d, d),
            q, k, v, default(NoScore), mask, default(SoftmaxNormalizer));
        for (int i = 0; i < o.Length; i++)
            Assert.True(Math.Abs(o[i] - refO[i]) <= Atol + Rtol * Math.Abs(refO[i]),
                $"scale {queryScale}, element {i}: {o[i]} vs fp64 {refO[i]}");
    }

    /// <summary>The tensor-core kernel (emulated) over evicted fp16 caches equals the host
    /// kernel over the same caches (itself checked against fp64 in the policy tests): kept
    /// slots at their original positions (L2-norm keeps a scattered set; ALiBi's bias reads
    /// them), and RazorAttention's compensation token weighted by ln N.</summary>
    [Fact]
    public void TensorCoreDecodeAfterEvictionEqualsHost()
    {
        const int kvHeads = 2, heads = 8, rows = 2, n = 150, d = 64;
        var (_, ks) = Data(kvHeads * n * d, 16, x => (Half)x, x => (float)x);
        var (_, vs) = Data(kvHeads * n * d, 17, x => (Half)x, x => (float)x);
        float[] q = Random(heads * rows * d, 18);
        using var device = Open(DeviceKind.IlgpuCpu);
        foreach (var policy in new IKvPolicy[]
        {
            new L2NormEviction(budget: 60),
            new RazorAttentionEviction([false, true], sinks: 4, minWindow: 24, compression: 4.0),
        })
        {
            float[] Run(ComputeDevice on, bool emulate)
            {
                using var cache = KvCache<Half>.Paged(on, 1, kvHeads, 16, 12, 12, d, d);
                cache.Append(ks, vs, n, [n]);
                policy.Apply(cache);
                var o = new float[heads * rows * d];
                DecodeAttention.Forward(cache, heads, rows, q, o, default, new AlibiScore(heads),
                    default(CausalMask), default(SoftmaxNormalizer),
                    new DecodeOptions { Splits = 2, EmulateTensorCores = emulate });
                return o;
            }
            float[] host = Run(ComputeDevice.Host, false), tensorCores = Run(device, true);
            for (int i = 0; i < host.Length; i++)
                Assert.True(Math.Abs(tensorCores[i] - host[i]) <= Atol + Rtol * Math.Abs(host[i]),
                    $"{policy.GetType().Name}, element {i}: {tensorCores[i]} vs host {host[i]}");
        }
    }

    /// <summary>Paged and contiguous caches holding the same rows give identical bits, and
    /// every split count (1, 2, 5, 64, and 150: more parts than a merge group has threads,
    /// most of them empty for the 45-row sequence) agrees with one part within tolerance; on
    /// a team of host workers too.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void PagedEqualsContiguousAndSplitsAgree(DeviceKind kind)
    {
        using var device = Open(kind);
        const int batch = 2, kvHeads = 2, heads = 6, rows = 2, d = 16, dv = 16, maxLen = 200;
        int[] lengths = [199, 45];
        var (_, k) = Data(batch * kvHeads * maxLen * d, 4, BFloat16.FromSingle, BFloat16.ToSingle);
        var (_, v) = Data(batch * kvHeads * maxLen * dv, 5, BFloat16.FromSingle, BFloat16.ToSingle);
        float[] q = Random(batch * heads * rows * d, 6);
        using var contiguous = Fill(device, false, batch, kvHeads, d, dv, lengths, k, v, maxLen);
        using var paged = Fill(device, true, batch, kvHeads, d, dv, lengths, k, v, maxLen);
        using var workers = new HostWorkers(3);
        float[] Run(KvCache<BFloat16> cache, int splits, HostWorkers? team = null)
        {
            var o = new float[batch * heads * rows * dv];
            DecodeAttention.Forward(cache, heads, rows, q, o, default, new AlibiScore(heads),
                default(CausalMask), default(SoftmaxNormalizer),
                new DecodeOptions { Splits = splits, Workers = team });
            return o;
        }
        var one = Run(contiguous, 1);
        Assert.Equal(one, Run(paged, 1));
        foreach (int splits in new[] { 2, 5, 64, 150 })
        {
            var split = Run(contiguous, splits);
            Assert.Equal(split, Run(paged, splits));
            Assert.Equal(split, Run(paged, splits, workers));   // the parts are the same
            for (int i = 0; i < one.Length; i++)
                Assert.True(Math.Abs(split[i] - one[i]) <= 1e-5 + 1e-5 * Math.Abs(one[i]),
                    $"splits {splits}, element {i}: {split[i]} vs {one[i]}");
        }
    }

    /// <summary>Appending one token at a time and decoding it equals a causal prefill of the
    /// whole sequence, row by row.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void TokenByTokenDecodeEqualsPrefill(DeviceKind kind)
    {
        using var device = Open(kind);
        const int heads = 4, kvHeads = 2, n = 40, d = 16;
        var shape = new AttentionShape(1, heads, kvHeads, n, n, d, d);
        float[] q = Random(heads * n * d, 7), k = Random(kvHeads * n * d, 8), v = Random(kvHeads * n * d, 9);
        var prefill = new float[shape.OutputLength];
        FlashAttention.Forward(ComputeDevice.Host, shape, q, k, v, prefill, default,
            default(NoScore), default(CausalMask), default(SoftmaxNormalizer));
        using var cache = KvCache<float>.Paged(device, 1, kvHeads, 8, 8, 8, d, d);
        var qt = new float[heads * d];
        var ot = new float[heads * d];
        for (int t = 0; t < n; t++)
        {
            var kt = new float[kvHeads * d];
            var vt = new float[kvHeads * d];
            for (int j = 0; j < kvHeads; j++)
            {
                Array.Copy(k, (j * n + t) * d, kt, j * d, d);
                Array.Copy(v, (j * n + t) * d, vt, j * d, d);
            }
            cache.Append(kt, vt, 1, [1]);
            for (int h = 0; h < heads; h++) Array.Copy(q, (h * n + t) * d, qt, h * d, d);
            DecodeAttention.Forward(cache, heads, 1, qt, ot, default, default(NoScore),
                default(CausalMask), default(SoftmaxNormalizer));
            for (int h = 0; h < heads; h++)
                for (int c = 0; c < d; c++)
                {
                    float e = prefill[(h * n + t) * d + c], a = ot[h * d + c];
                    Assert.True(Math.Abs(a - e) <= 1e-5 + 1e-5 * Math.Abs(e),
                        $"token {t} head {h} dim {c}: {a} vs prefill {e}");
                }
        }
    }

    /// <summary>Keys outside the mask are never read: NaN planted everywhere but the sinks and
    /// the window leaves the output finite and equal to the reference over the kept keys.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void KeysOutsideTheMaskAreNotRead(DeviceKind kind)
    {
        using var device = Open(kind);
        const int heads = 2, n = 300, d = 16, sinks = 4, window = 32;
        float[] k = Random(heads * n * d, 10), v = Random(heads * n * d, 11), q = Random(heads * d, 12);
        var clean = (float[])k.Clone();
        for (int h = 0; h < heads; h++)
            for (int t = sinks + 16; t < n - window - 16; t++)
            {
                k[(h * n + t) * d] = float.NaN;
                v[(h * n + t) * d] = float.NaN;
            }
        using var cache = KvCache<float>.Contiguous(device, 1, heads, n, d, d);
        cache.Append(k, v, n, [n]);
        var o = new float[heads * d];
        var mask = new SinkWindowMask(sinks, window);
        DecodeAttention.Forward(cache, heads, 1, q, o, default, default(NoScore), mask,
            default(SoftmaxNormalizer));
        Assert.All(o, x => Assert.True(float.IsFinite(x)));
        var (refO, _) = ReferenceAttention.Forward(new AttentionShape(1, heads, heads, 1, n, d, d),
            q, clean, v.Select(x => float.IsNaN(x) ? 0f : x).ToArray(), default(NoScore), mask,
            default(SoftmaxNormalizer));
        for (int i = 0; i < o.Length; i++)
            Assert.True(Math.Abs(o[i] - refO[i]) <= Atol + Rtol * Math.Abs(refO[i]), $"{i}");
    }

    /// <summary>Bad appends throw before anything changes: wrong counts, a length beyond the
    /// capacity, a full pool, wrong lengths.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void BadAppendsChangeNothing(DeviceKind kind)
    {
        using var device = Open(kind);
        using var cache = KvCache<float>.Paged(device, 2, 1, pageSize: 4, pages: 3,
            maxPagesPerSequence: 2, headDim: 4, valueDim: 4);
        float[] rows5 = new float[2 * 5 * 4];
        cache.Append(rows5, rows5, 5, [5, 0]); // two pages for sequence 0
        void Expect(string fragment, Action append)
        {
            var e = Assert.Throws<ArgumentException>(append);
            Assert.Contains(fragment, e.Message);
            Assert.Equal([5, 0], cache.Lengths());
            Assert.Equal(1, cache.FreePages);
        }
        Expect("counts has 1 entries", () => cache.Append(rows5, rows5, 5, [1]));
        Expect("capacity is 8", () => cache.Append(rows5, rows5, 5, [4, 0]));
        Expect("needs 2 new pages", () => cache.Append(rows5, rows5, 5, [0, 5]));
        Expect("expected 40", () => cache.Append(new float[8], rows5, 5, [1, 1]));
        Expect("counts[1] is 6", () => cache.Append(rows5, rows5, 5, [0, 6]));
        cache.Append(rows5, rows5, 5, [0, 4]);
        Assert.Equal([5, 4], cache.Lengths());
        Assert.Equal(0, cache.FreePages);
    }
}
