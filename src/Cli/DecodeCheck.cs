using Managed.Kernels.Attention;
using Managed.Kernels.Decode;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Cli;

/// <summary>
/// Decode over KV caches on one device against the fp64 reference on the values the cache
/// holds: contiguous and paged (16-row pages), float, Half and BFloat16, 1 and 4 query rows
/// with GQA ratios 4 and 8, one part and the split rule, head dims 64 (and 128 for 4 rows at
/// GQA 8), sequences of 300, 77, 1 and 0 keys (softcap 20, causal). On CUDA the Half and
/// BFloat16 rows run on the tensor cores. Pass rule as <see cref="CheckCommand"/>'s.
/// </summary>
internal static class DecodeCheck
{
    public static (int Checked, int Failed) Run(ComputeDevice device, TextWriter output)
    {
        int count = 0, failed = 0;
        foreach (var storage in new[] { "float", "half", "bfloat16" })
            foreach (bool paged in new[] { false, true })
                foreach (var (rows, group, splits, dim) in new (int, int, int?, int)[]
                {
                    (1, 4, 1, 64), (1, 4, null, 64), (4, 8, 1, 64), (4, 8, null, 64),
                    (4, 8, null, 128), (2, 4, null, 128), (3, 2, 3, 128),
                })
                {
                    bool ok = storage switch
                    {
                        "half" => Case<Half>(device, paged, rows, group, splits, dim,
                            x => (Half)x, x => (float)x, output),
                        "bfloat16" => Case<BFloat16>(device, paged, rows, group, splits, dim,
                            BFloat16.FromSingle, BFloat16.ToSingle, output),
                        _ => Case<float>(device, paged, rows, group, splits, dim, x => x,
                            x => x, output),
                    };
                    count++;
                    if (!ok) failed++;
                }
        return (count, failed);
    }

    private static bool Case<T>(ComputeDevice device, bool paged, int rows, int group,
        int? splits, int d, Func<float, T> narrow, Func<T, float> widen, TextWriter output)
        where T : unmanaged
    {
        const int kvHeads = 2, maxLen = 300;
        int dv = d;
        int[] lengths = [300, 77, 1, 0];
        int batch = lengths.Length, heads = kvHeads * group;
        var rng = new Random(rows * 31 + group);
        var k = new T[batch * kvHeads * maxLen * d];
        var v = new T[batch * kvHeads * maxLen * dv];
        for (int i = 0; i < k.Length; i++) k[i] = narrow((float)(rng.NextDouble() * 2 - 1));
        for (int i = 0; i < v.Length; i++) v[i] = narrow((float)(rng.NextDouble() * 2 - 1));
        var q = new float[batch * heads * rows * d];
        for (int i = 0; i < q.Length; i++) q[i] = (float)(rng.NextDouble() * 2 - 1);
        using var cache = paged
            ? KvCache<T>.Paged(device, batch, kvHeads, 16, batch * 19, 19, d, dv)
            : KvCache<T>.Contiguous(device, batch, kvHeads, maxLen, d, dv);
        cache.Append(k, v, maxLen, lengths);
        var o = new float[batch * heads * rows * dv];
        var lse = new float[batch * heads * rows];
        var score = new SoftcapScore(20f);
        DecodeAttention.Forward(cache, heads, rows, q, o, lse, score, default(CausalMask),
            default(SoftmaxNormalizer), new DecodeOptions { Splits = splits });
        bool ok = true;
        double worst = 0;
        for (int b = 0; b < batch; b++)
        {
            int n = lengths[b];
            var oRows = o.AsSpan(b * heads * rows * dv, heads * rows * dv);
            var lRows = lse.AsSpan(b * heads * rows, heads * rows);
            if (n == 0)
            {
                foreach (float x in oRows) ok &= x == 0f;
                foreach (float x in lRows) ok &= float.IsNegativeInfinity(x);
                continue;
            }
            var shape = new AttentionShape(1, heads, kvHeads, rows, n, d, dv);
            var kb = new float[kvHeads * n * d];
            var vb = new float[kvHeads * n * dv];
            for (int h = 0; h < kvHeads; h++)
                for (int i = 0; i < n * d; i++)
                {
                    kb[h * n * d + i] = widen(k[(b * kvHeads + h) * maxLen * d + i]);
                    vb[h * n * dv + i] = widen(v[(b * kvHeads + h) * maxLen * dv + i]);
                }
            var (refO, refLse) = ReferenceAttention.Forward(shape,
                q.AsSpan(b * heads * rows * d, heads * rows * d), kb, vb, score,
                default(CausalMask), default(SoftmaxNormalizer));
            var (abs, _, okO) = CheckCommand.CompareOutput(oRows, refO, refLse, shape, vb);
            var (absL, _, okL) = CheckCommand.Compare(lRows, refLse);
            ok &= okO && okL;
            worst = Math.Max(worst, Math.Max(abs, absL));
        }
        string type = typeof(T) == typeof(float) ? "float" : typeof(T).Name.ToLowerInvariant();
        string name = $"decode/{(paged ? "paged" : "contiguous")}/{type}";
        string label = $"D={d} rows={rows} G={group} splits={(splits is { } s ? s : "rule")} "
            + "lengths=300,77,1,0";
        output.WriteLine($"{name,-34} {device.Kind,-10} {label,-52} {worst,10:E2}  "
            + (ok ? "pass" : "FAIL"));
        return ok;
    }
}
