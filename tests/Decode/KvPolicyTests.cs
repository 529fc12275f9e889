using Managed.Kernels.Attention;
using Managed.Kernels.Decode;
using Managed.Kernels.Decode.Policies;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;
using Xunit;
using Half = System.Half;

namespace Managed.Tests.Decode;

/// <summary>
/// KV policies and eviction on the host and the ILGPU CPU accelerator, float and Half,
/// contiguous and paged: a policy with nothing to evict leaves decode bit-identical; after an
/// eviction decode equals an fp64 reference over exactly the retained tokens at their original
/// positions (causal and sliding-window masks), RazorAttention's with its compensation token
/// weighted N_d; NaN planted in evicted tokens never reaches the output; appends after an
/// eviction land at the right positions; paged caches give pages back; bad Retain input
/// throws and changes nothing.
/// </summary>
public sealed class KvPolicyTests
{
    private const int Batch = 2, KvHeads = 2, Group = 2, Heads = KvHeads * Group, Rows = 2;
    private const int D = 16, Dv = 12, MaxTokens = 96;
    private static readonly int[] Initial = [70, 45];

    public static TheoryData<DeviceKind, bool, bool> Cases()
    {
        var data = new TheoryData<DeviceKind, bool, bool>();
        foreach (var kind in new[] { DeviceKind.Host, DeviceKind.IlgpuCpu })
            foreach (bool half in new[] { false, true })
                foreach (bool paged in new[] { false, true })
                    data.Add(kind, half, paged);
        return data;
    }

    /// <summary>Tokens (batch, kvHeads, MaxTokens, dim) by position, as stored and widened.
    /// </summary>
    private sealed class Tokens
    {
        public readonly float[] K = Values(Batch * KvHeads * MaxTokens * D, 1);
        public readonly float[] V = Values(Batch * KvHeads * MaxTokens * Dv, 2);
        public readonly float[] Q = Values(Batch * Heads * Rows * D, 3);

        public Tokens(bool half)
        {
            if (!half) return;
            for (int i = 0; i < K.Length; i++) K[i] = (float)(Half)K[i];
            for (int i = 0; i < V.Length; i++) V[i] = (float)(Half)V[i];
        }

        private static float[] Values(int n, int seed)
        {
            var rng = new Random(seed);
            return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        }

        public ReadOnlySpan<float> Key(int b, int h, int pos) =>
            K.AsSpan(((b * KvHeads + h) * MaxTokens + pos) * D, D);

        public ReadOnlySpan<float> Value(int b, int h, int pos) =>
            V.AsSpan(((b * KvHeads + h) * MaxTokens + pos) * Dv, Dv);
    }

    /// <summary>A cache of float or Half (as the harness's type) on the device.</summary>
    private sealed class Harness<T> : IDisposable where T : unmanaged
    {
        public readonly ComputeDevice Device;
        public readonly KvCache<T> Cache;
        public readonly Tokens Data;
        private readonly Func<float, T> _narrow;

        public Harness(DeviceKind kind, bool paged, Tokens data, Func<float, T> narrow)
        {
            Device = kind == DeviceKind.Host ? ComputeDevice.Host : ComputeDevice.Open(kind);
            Cache = paged
                ? KvCache<T>.Paged(Device, Batch, KvHeads, pageSize: 8, pages: 2 * 13,
                    maxPagesPerSequence: 13, D, Dv)
                : KvCache<T>.Contiguous(Device, Batch, KvHeads, MaxTokens + 4, D, Dv);
            (Data, _narrow) = (data, narrow);
            Append(Initial);
        }

        /// <summary>Appends each sequence's next counts[b] tokens.</summary>
        public void Append(int[] counts)
        {
            int rows = Math.Max(1, counts.Max());
            var k = new T[Batch * KvHeads * rows * D];
            var v = new T[Batch * KvHeads * rows * Dv];
            for (int b = 0; b < Batch; b++)
                for (int h = 0; h < KvHeads; h++)
                    for (int i = 0; i < counts[b]; i++)
                    {
                        int pos = Cache.Length(b) + i, at = (b * KvHeads + h) * rows + i;
                        for (int c = 0; c < D; c++) k[at * D + c] = _narrow(Data.Key(b, h, pos)[c]);
                        for (int c = 0; c < Dv; c++)
                            v[at * Dv + c] = _narrow(Data.Value(b, h, pos)[c]);
                    }
            Cache.Append(k, v, rows, counts);
        }

        public float[] Decode<TMask>(TMask mask) where TMask : struct, IMaskPredicate
        {
            var o = new float[Batch * Heads * Rows * Dv];
            DecodeAttention.Forward(Cache, Heads, Rows, Data.Q, o, default, default(NoScore),
                mask, default(SoftmaxNormalizer), new DecodeOptions { Splits = 3 });
            return o;
        }

        public void Dispose()
        {
            Cache.Dispose();
            if (Device != ComputeDevice.Host) Device.Dispose();
        }
    }

    private static void WithHarness(DeviceKind kind, bool half, bool paged,
        Action<object> body)
    {
        var data = new Tokens(half);
        if (half)
        {
            using var h = new Harness<Half>(kind, paged, data, x => (Half)x);
            body(h);
        }
        else
        {
            using var h = new Harness<float>(kind, paged, data, x => x);
            body(h);
        }
    }

    /// <summary>The fp64 reference over what the cache says each head holds: slot j is the
    /// token at Positions[j], or, at the compensation slot, the mean of every token of
    /// [0, Length) the head no longer holds, weighted by their count (which it checks).</summary>
    private static double[] Reference<T, TMask>(Harness<T> hs, TMask mask)
        where T : unmanaged where TMask : struct, IMaskPredicate
    {
        var cache = hs.Cache;
        var o = new double[Batch * Heads * Rows * Dv];
        double scale = 1.0 / Math.Sqrt(D);
        for (int b = 0; b < Batch; b++)
            for (int kvh = 0; kvh < KvHeads; kvh++)
            {
                int length = cache.Length(b);
                int[] pos = cache.Positions(b, kvh);
                var (cSlot, cCount) = cache.Compensation(b, kvh);
                var keys = new double[pos.Length][];
                var values = new double[pos.Length][];
                var logN = new double[pos.Length];
                for (int j = 0; j < pos.Length; j++)
                {
                    keys[j] = Wide(hs.Data.Key(b, kvh, pos[j]));
                    values[j] = Wide(hs.Data.Value(b, kvh, pos[j]));
                }
                if (cSlot >= 0)
                {
                    var held = pos.Where((_, j) => j != cSlot).ToHashSet();
                    var dropped = Enumerable.Range(0, length).Where(p => !held.Contains(p))
                        .ToArray();
                    Assert.Equal(dropped.Length, cCount);
                    keys[cSlot] = Mean(dropped.Select(p => hs.Data.Key(b, kvh, p).ToArray()), D);
                    values[cSlot] = Mean(
                        dropped.Select(p => hs.Data.Value(b, kvh, p).ToArray()), Dv);
                    logN[cSlot] = Math.Log(cCount);
                }
                for (int g = 0; g < Group; g++)
                    for (int r = 0; r < Rows; r++)
                    {
                        int h = kvh * Group + g, qpos = length - Rows + r;
                        var q = hs.Data.Q.AsSpan(((b * Heads + h) * Rows + r) * D, D).ToArray();
                        var s = new double[pos.Length];
                        double m = double.NegativeInfinity;
                        for (int j = 0; j < pos.Length; j++)
                        {
                            s[j] = mask.Allows(b, h, qpos, pos[j])
                                ? scale * q.Select((x, c) => x * keys[j][c]).Sum() + logN[j]
                                : double.NegativeInfinity;
                            m = Math.Max(m, s[j]);
                        }
                        var row = o.AsSpan(((b * Heads + h) * Rows + r) * Dv, Dv);
                        if (double.IsNegativeInfinity(m)) continue;
                        double l = 0;
                        for (int j = 0; j < pos.Length; j++)
                        {
                            double w = Math.Exp(s[j] - m);
                            l += w;
                            for (int c = 0; c < Dv; c++) row[c] += w * values[j][c];
                        }
                        for (int c = 0; c < Dv; c++) row[c] /= l;
                    }
            }
        return o;
    }

    private static double[] Wide(ReadOnlySpan<float> row)
    {
        var wide = new double[row.Length];
        for (int c = 0; c < row.Length; c++) wide[c] = row[c];
        return wide;
    }

    private static double[] Mean(IEnumerable<float[]> rows, int dim)
    {
        var sum = new double[dim];
        int n = 0;
        foreach (var row in rows)
        {
            for (int c = 0; c < dim; c++) sum[c] += row[c];
            n++;
        }
        return sum.Select(x => x / n).ToArray();
    }

    private static void AssertClose(float[] actual, double[] expected, double atol, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= atol + 1e-4 * Math.Abs(expected[i]),
                $"{what}: element {i}: {actual[i]} vs fp64 {expected[i]}");
    }

    private static void CheckBoth<T>(Harness<T> hs, string what, double atol = 2e-5)
        where T : unmanaged
    {
        AssertClose(hs.Decode(default(CausalMask)), Reference(hs, default(CausalMask)), atol,
            what + " causal");
        var window = SlidingWindowMask.Causal(25);
        AssertClose(hs.Decode(window), Reference(hs, window), atol, what + " window 25");
    }

    private static IKvPolicy[] NothingToEvict() =>
    [
        new StreamingLlmEviction(4, MaxTokens),
        new DuoAttentionEviction([true, false], 4, MaxTokens),
        new RazorAttentionEviction([false, false], 4, MaxTokens, 1.0),
        new L2NormEviction(MaxTokens),
    ];

    private static IKvPolicy[] Evicting() =>
    [
        new StreamingLlmEviction(4, 20),
        new DuoAttentionEviction([true, false], 3, 17),
        new L2NormEviction(30),
    ];

    /// <summary>Each policy with nothing to evict leaves the cache as it was: decode is bit
    /// for bit the same as before (causal and windowed), every head keeps Length rows at
    /// positions 0, 1, 2, ...</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void NothingToEvictIsFullAttentionBitwise(DeviceKind kind, bool half, bool paged) =>
        WithHarness(kind, half, paged, o =>
        {
            foreach (var policy in NothingToEvict())
                Run((dynamic)o, policy);
        });

    private static void Run<T>(Harness<T> hs, IKvPolicy policy) where T : unmanaged
    {
        var causal = hs.Decode(default(CausalMask));
        var window = hs.Decode(SlidingWindowMask.Causal(25));
        int free = hs.Cache.FreePages;
        policy.Apply(hs.Cache);
        Assert.Equal(causal, hs.Decode(default(CausalMask)));
        Assert.Equal(window, hs.Decode(SlidingWindowMask.Causal(25)));
        Assert.Equal(free, hs.Cache.FreePages);
        for (int b = 0; b < Batch; b++)
            for (int h = 0; h < KvHeads; h++)
            {
                Assert.Equal(Initial[b], hs.Cache.Kept(b, h));
                Assert.Equal(Enumerable.Range(0, Initial[b]), hs.Cache.Positions(b, h));
                Assert.Equal((-1, 0), hs.Cache.Compensation(b, h));
            }
    }

    /// <summary>The positions a policy should keep for head (b, h) of a fresh cache.</summary>
    private static int[] Expected<T>(Harness<T> hs, IKvPolicy policy, int b, int h)
        where T : unmanaged
    {
        int n = hs.Cache.Length(b);
        IEnumerable<int> all = Enumerable.Range(0, n);
        return policy switch
        {
            StreamingLlmEviction s => all.Where(p => p < s.Sinks || p >= n - s.Window).ToArray(),
            DuoAttentionEviction s => s.IsRetrieval(h) ? all.ToArray()
                : all.Where(p => p < s.Sinks || p >= n - s.Window).ToArray(),
            L2NormEviction s => all.OrderBy(p => Norm(hs.Data.Key(b, h, p))).ThenBy(p => p)
                .Take(s.Budget).Order().ToArray(),
            _ => throw new ArgumentException(policy.ToString()),
        };
    }

    private static float Norm(ReadOnlySpan<float> k)
    {
        float sum = 0f;
        foreach (float x in k) sum += x * x;
        return float.IsNaN(sum) ? float.PositiveInfinity : sum;
    }

    /// <summary>After each evicting policy the heads hold exactly the expected positions and
    /// decode equals fp64 over them (causal, sliding window 25); a paged cache gave pages back.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void EvictedDecodeMatchesReference(DeviceKind kind, bool half, bool paged)
    {
        foreach (var policy in Evicting())
            WithHarness(kind, half, paged, o => Evict((dynamic)o, policy, paged));
    }

    private static void Evict<T>(Harness<T> hs, IKvPolicy policy, bool paged) where T : unmanaged
    {
        int free = hs.Cache.FreePages;
        var expected = Enumerable.Range(0, Batch * KvHeads)
            .Select(i => Expected(hs, policy, i / KvHeads, i % KvHeads)).ToArray();
        policy.Apply(hs.Cache);
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i], hs.Cache.Positions(i / KvHeads, i % KvHeads));
        Assert.Equal(Initial, hs.Cache.Lengths());
        if (paged)
        {
            int pages = Enumerable.Range(0, Batch).Sum(b => (Enumerable.Range(0, KvHeads)
                .Max(h => hs.Cache.Kept(b, h)) + 7) / 8);
            Assert.Equal(2 * 13 - pages, hs.Cache.FreePages);
            if (policy is not DuoAttentionEviction) Assert.True(hs.Cache.FreePages > free);
        }
        CheckBoth(hs, policy.GetType().Name);
    }

    /// <summary>RazorAttention: the retrieval head keeps all; the other keeps N0 sinks, L_h
    /// recent rows and one compensation token at the first dropped position, weighted by N_d;
    /// decode equals fp64 with that weighting. A second application after an append folds the
    /// newly dropped tokens into the same token (count-weighted mean).</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void RazorMatchesReferenceWithCompensation(DeviceKind kind, bool half, bool paged) =>
        WithHarness(kind, half, paged, o => Razor((dynamic)o, half));

    private static void Razor<T>(Harness<T> hs, bool half) where T : unmanaged
    {
        var policy = new RazorAttentionEviction([true, false], sinks: 4, minWindow: 16,
            compression: 4.0);
        double atol = half ? 2e-3 : 2e-5; // the means are rounded once to Half
        policy.Apply(hs.Cache);
        for (int b = 0; b < Batch; b++)
        {
            int n = Initial[b], window = policy.WindowFor(n); // 17, 16
            Assert.Equal(Enumerable.Range(0, n), hs.Cache.Positions(b, 0));
            Assert.Equal((-1, 0), hs.Cache.Compensation(b, 0));
            int[] kept = [.. Enumerable.Range(0, 5), .. Enumerable.Range(n - window, window)];
            Assert.Equal(kept, hs.Cache.Positions(b, 1));
            Assert.Equal((4, n - window - 4), hs.Cache.Compensation(b, 1));
        }
        CheckBoth(hs, "razor", atol);
        hs.Append([9, 3]);
        policy.Apply(hs.Cache);
        Assert.Equal(79 - 19 - 4, hs.Cache.Compensation(0, 1).Count);
        CheckBoth(hs, "razor after append", atol);
    }

    /// <summary>NaN in an evicted token's K and V (written before the eviction) never reaches
    /// the output of a policy without compensation (RazorAttention's token is by definition
    /// the mean of what it drops, NaN included).</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void EvictedNaNNeverReachesTheOutput(DeviceKind kind, bool half, bool paged)
    {
        foreach (var policy in Evicting())
        {
            var data = new Tokens(half);
            int[] planted = [5, 10, 20]; // dropped by every policy here
            foreach (int b in new[] { 0, 1 })
                foreach (int h in new[] { 0, 1 })
                    foreach (int p in planted)
                    {
                        if (policy is DuoAttentionEviction && h == 0) continue; // retrieval
                        data.K[((b * KvHeads + h) * MaxTokens + p) * D + 3] = float.NaN;
                        data.V[((b * KvHeads + h) * MaxTokens + p) * Dv + 5] = float.NaN;
                    }
            void Body<T>(Harness<T> hs) where T : unmanaged
            {
                policy.Apply(hs.Cache);
                for (int i = 0; i < Batch * KvHeads; i++)
                    Assert.DoesNotContain(hs.Cache.Positions(i / KvHeads, i % KvHeads),
                        p => planted.Contains(p)
                            && !(policy is DuoAttentionEviction && i % 2 == 0));
                var causal = hs.Decode(default(CausalMask));
                var window = hs.Decode(SlidingWindowMask.Causal(25));
                Assert.All(causal, x => Assert.True(float.IsFinite(x)));
                Assert.All(window, x => Assert.True(float.IsFinite(x)));
            }
            if (half)
            {
                using var h = new Harness<Half>(kind, paged, data, x => (Half)x);
                Body(h);
            }
            else
            {
                using var h = new Harness<float>(kind, paged, data, x => x);
                Body(h);
            }
        }
    }

    /// <summary>Appends after an eviction: each head appends after its own rows at positions
    /// Length + i; decode equals fp64; a second eviction keeps the right positions.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void AppendAfterEvictionMatchesReference(DeviceKind kind, bool half, bool paged) =>
        WithHarness(kind, half, paged, o => AppendAfter((dynamic)o));

    private static void AppendAfter<T>(Harness<T> hs) where T : unmanaged
    {
        new DuoAttentionEviction([false, true], 4, 20).Apply(hs.Cache);
        hs.Append([5, 2]);
        int[] lengths = [75, 47];
        Assert.Equal(lengths, hs.Cache.Lengths());
        for (int b = 0; b < Batch; b++)
        {
            int n0 = Initial[b], n = lengths[b];
            Assert.Equal([.. Enumerable.Range(0, 4), .. Enumerable.Range(n0 - 20, n - n0 + 20)],
                hs.Cache.Positions(b, 0));
            Assert.Equal(Enumerable.Range(0, n), hs.Cache.Positions(b, 1));
            Assert.Equal(24 + n - n0, hs.Cache.Kept(b, 0));
        }
        CheckBoth(hs, "append after eviction");
        new StreamingLlmEviction(2, 9).Apply(hs.Cache);
        hs.Append([1, 0]);
        for (int b = 0; b < Batch; b++)
            for (int h = 0; h < KvHeads; h++)
                Assert.Equal([0, 1, .. Enumerable.Range(lengths[b] - 9, 9 + (b == 0 ? 1 : 0))],
                    hs.Cache.Positions(b, h));
        CheckBoth(hs, "second eviction");
        hs.Cache.Clear();
        Assert.Equal([0, 0], hs.Cache.Lengths());
        Assert.Equal(0, hs.Cache.Kept(0, 0));
        hs.Append(Initial);
        Assert.Equal(Enumerable.Range(0, 70), hs.Cache.Positions(0, 1));
        CheckBoth(hs, "after clear");
    }

    /// <summary>Bad Retain input throws, naming what was expected, and changes nothing: not
    /// the lengths, kept rows, positions, pages or decode.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void BadRetainThrowsAndChangesNothing(DeviceKind kind, bool half, bool paged) =>
        WithHarness(kind, half, paged, o => BadRetain((dynamic)o));

    private static void BadRetain<T>(Harness<T> hs) where T : unmanaged
    {
        var cache = hs.Cache;
        cache.Retain([2, 2, 2, 2], [0, 5, 0, 5, 0, 5, 0, 5], compensate: true);
        var before = hs.Decode(default(CausalMask));
        var positions = Enumerable.Range(0, 4).Select(i => cache.Positions(i / 2, i % 2)).ToArray();
        int free = cache.FreePages;
        void Expect(string fragment, Action retain)
        {
            var e = Assert.Throws<ArgumentException>(retain);
            Assert.Contains(fragment, e.Message);
            Assert.Equal(Initial, cache.Lengths());
            for (int i = 0; i < 4; i++)
            {
                Assert.Equal(positions[i], cache.Positions(i / 2, i % 2));
                Assert.Equal(3, cache.Kept(i / 2, i % 2));
                Assert.Equal((1, Initial[i / 2] - 2), cache.Compensation(i / 2, i % 2));
            }
            Assert.Equal(free, cache.FreePages);
            Assert.Equal(before, hs.Decode(default(CausalMask)));
        }
        Expect("counts has 3 entries", () => cache.Retain([1, 1, 1], [0, 0, 0]));
        Expect("counts[2] (sequence 1, KV head 0) is 4", () => cache.Retain([1, 1, 4, 1],
            [0, 0, 0, 1, 2, 2, 0]));
        Expect("counts[0] (sequence 0, KV head 0) is -1", () => cache.Retain([-1, 1, 1, 1],
            [0, 0, 0]));
        Expect("expected the sum of counts, 4", () => cache.Retain([1, 1, 1, 1], [1, 1, 1]));
        Expect("slots[1] (sequence 0, KV head 0) is 0", () => cache.Retain([2, 1, 1, 1],
            [1, 0, 1, 1, 1]));
        Expect("slots[3] (sequence 1, KV head 1) is 3", () => cache.Retain([1, 1, 1, 1],
            [1, 1, 1, 3]));
        Expect("would drop its compensation row (slot 1)", () => cache.Retain([1, 1, 1, 1],
            [1, 1, 0, 1]));
        cache.Retain([3, 3, 3, 3], [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]); // drops nothing
        Assert.Equal(before, hs.Decode(default(CausalMask)));
    }
}
