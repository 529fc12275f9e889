using Managed.Kernels.Decode;
using Managed.Kernels.Decode.Policies;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>
/// Decode after each KV policy (StreamingLLM, DuoAttention, RazorAttention, L2-norm) on one
/// device, against an fp64 reference written from the policy's outcome as the cache reports it
/// (kept positions; the compensation row as N_d copies of the mean of the dropped rows):
/// contiguous and paged, float, 1 and 4 query rows, causal, sequences of 300 and 77 tokens.
/// </summary>
internal static class PolicyCheck
{
    private const int KvHeads = 2, Group = 4, D = 64, MaxLen = 300;
    private const double Atol = 2e-5, Rtol = 1e-4;

    public static (int Checked, int Failed) Run(ComputeDevice device, TextWriter output)
    {
        var policies = new (string Name, IKvPolicy Policy)[]
        {
            ("streaming-llm sinks=4 window=64", new StreamingLlmEviction(4, 64)),
            ("duo-attention retrieval=[1,0]", new DuoAttentionEviction([true, false], 4, 64)),
            ("razor retrieval=[0,1] C=4", new RazorAttentionEviction([false, true], 4, 32, 4.0)),
            ("l2-norm budget=100", new L2NormEviction(100)),
        };
        int count = 0, failed = 0;
        foreach (var (name, policy) in policies)
            foreach (bool paged in new[] { false, true })
                foreach (int rows in new[] { 1, 4 })
                {
                    count++;
                    if (!Case(device, name, policy, paged, rows, output)) failed++;
                }
        return (count, failed);
    }

    private static bool Case(ComputeDevice device, string name, IKvPolicy policy, bool paged,
        int rows, TextWriter output)
    {
        int[] lengths = [300, 77];
        int batch = lengths.Length, heads = KvHeads * Group;
        var rng = new Random(rows * 7 + (paged ? 1 : 0));
        var k = new float[batch * KvHeads * MaxLen * D];
        var v = new float[batch * KvHeads * MaxLen * D];
        var q = new float[batch * heads * rows * D];
        foreach (var a in new[] { k, v, q })
            for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        using var cache = paged
            ? KvCache<float>.Paged(device, batch, KvHeads, 16, batch * 19, 19, D, D)
            : KvCache<float>.Contiguous(device, batch, KvHeads, MaxLen, D, D);
        cache.Append(k, v, MaxLen, lengths);
        policy.Apply(cache);
        var o = new float[batch * heads * rows * D];
        DecodeAttention.Forward(cache, heads, rows, q, o, default, default(NoScore),
            default(CausalMask), default(SoftmaxNormalizer));
        bool ok = true;
        double worst = 0;
        int kept = 0;
        for (int b = 0; b < batch; b++)
            for (int kvh = 0; kvh < KvHeads; kvh++)
            {
                int[] positions = cache.Positions(b, kvh);
                kept += positions.Length;
                var (slot, dropped) = cache.Compensation(b, kvh);
                for (int g = 0; g < Group; g++)
                    for (int r = 0; r < rows; r++)
                    {
                        int h = kvh * Group + g, at = ((b * heads + h) * rows + r) * D;
                        double[] expected = Reference(k, v, q.AsSpan(at, D), b, kvh, positions,
                            slot, dropped, lengths[b] - rows + r);
                        for (int c = 0; c < D; c++)
                        {
                            double err = Math.Abs(o[at + c] - expected[c]);
                            worst = Math.Max(worst, err);
                            ok &= err <= Atol + Rtol * Math.Abs(expected[c]);
                        }
                    }
            }
        string label = $"rows={rows} G={Group} kept={kept} of {2 * (300 + 77)}";
        output.WriteLine($"{"policy/" + (paged ? "paged" : "contiguous") + "/float",-34} "
            + $"{device.Kind,-10} {name + " " + label,-52} {worst,10:E2}  "
            + (ok ? "pass" : "FAIL"));
        return ok;
    }

    /// <summary>Causal softmax attention of one query row at <paramref name="position"/> over
    /// the kept rows (the original rows at their positions; the compensation row as
    /// <paramref name="dropped"/> copies of the mean of every row not kept).</summary>
    private static double[] Reference(float[] k, float[] v, ReadOnlySpan<float> q, int b,
        int kvh, int[] positions, int slot, int dropped, int position)
    {
        double scale = 1.0 / Math.Sqrt(D);
        var rowsOf = new List<(double[] K, double[] V, double Weight, int Position)>();
        var keptSet = new HashSet<int>();
        for (int j = 0; j < positions.Length; j++)
            if (j != slot) keptSet.Add(positions[j]);
        for (int j = 0; j < positions.Length; j++)
        {
            if (j == slot)
            {
                var (mk, mv) = (new double[D], new double[D]);
                int n = 0;
                for (int t = 0; t < positions[^1]; t++)
                {
                    if (keptSet.Contains(t)) continue;
                    n++;
                    for (int c = 0; c < D; c++)
                    {
                        mk[c] += k[Row(b, kvh, t) + c];
                        mv[c] += v[Row(b, kvh, t) + c];
                    }
                }
                for (int c = 0; c < D; c++) { mk[c] /= n; mv[c] /= n; }
                rowsOf.Add((mk, mv, dropped, positions[j]));
                continue;
            }
            int p = positions[j];
            rowsOf.Add((Enumerable.Range(0, D).Select(c => (double)k[Row(b, kvh, p) + c])
                .ToArray(),
                Enumerable.Range(0, D).Select(c => (double)v[Row(b, kvh, p) + c]).ToArray(), 1, p));
        }
        var scores = new double[rowsOf.Count];
        double max = double.NegativeInfinity;
        for (int j = 0; j < rowsOf.Count; j++)
        {
            if (rowsOf[j].Position > position) { scores[j] = double.NegativeInfinity; continue; }
            double dot = 0;
            for (int c = 0; c < D; c++) dot += q[c] * rowsOf[j].K[c];
            scores[j] = dot * scale + Math.Log(rowsOf[j].Weight);
            max = Math.Max(max, scores[j]);
        }
        var o = new double[D];
        double sum = 0;
        for (int j = 0; j < rowsOf.Count; j++)
        {
            if (double.IsNegativeInfinity(scores[j])) continue;
            double e = Math.Exp(scores[j] - max);
            sum += e;
            for (int c = 0; c < D; c++) o[c] += e * rowsOf[j].V[c];
        }
        for (int c = 0; c < D; c++) o[c] = sum == 0 ? 0 : o[c] / sum;
        return o;
    }

    private static int Row(int b, int kvh, int position) =>
        ((b * KvHeads + kvh) * MaxLen + position) * D;
}
