using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>
/// Linear attention on one device against the fp64 naive form: each feature map applied on
/// the device (against the host's features), then the chunked kernel over them, causal and
/// not, normalized and not, with and without a per-head decay, GQA 2, chunk sizes 1, 16 and
/// the default, and a prefill of 90 tokens followed by 10 recurrent steps through a state.
/// Pass: |out - ref| &lt;= 1e-4 (|ref| + mean |ref|) (sums of positive weights times values
/// of both signs: the mean magnitude stands for the row's scale).
/// </summary>
internal static class LinearCheck
{
    private const int Batch = 2, Heads = 4, KvHeads = 2, Length = 100, Dim = 8, ValueDim = 12;

    public static (int Checked, int Failed) Run(ComputeDevice device, TextWriter output)
    {
        int count = 0, failed = 0;
        var rng = new Random(5);
        float[] x = BenchCommand.Fill(rng, (long)Batch * Heads * Length * Dim);
        float[] xk = BenchCommand.Fill(rng, (long)Batch * KvHeads * Length * Dim);
        float[] v = BenchCommand.Fill(rng, (long)Batch * KvHeads * Length * ValueDim);
        float[] projection = RandomFeatureMap.Projection(32, Dim, seed: 3);
        float[] hedgehog = BenchCommand.Fill(rng, (long)Heads * 6 * (Dim + 1));
        foreach (var (name, map) in Maps(device, projection, hedgehog))
        {
            var (fq, fk, ok, err) = map(x, xk);
            count++;
            if (!ok) failed++;
            output.WriteLine($"{"linear/map/" + name,-34} {device.Kind,-10} "
                + $"{"rows " + Length + " dim " + Dim,-52} {err,10:E2}  {(ok ? "pass" : "FAIL")}");
            int f = fq.Length / (Batch * Heads * Length);
            foreach (var (causal, normalize, decay, chunk) in Cases(name == "elu+1"))
            {
                var shape = new LinearAttentionShape(Batch, Heads, KvHeads, Length, f, ValueDim);
                var o = new float[shape.OutputLength];
                float[] lambda = decay ? [0.95f, 0.8f] : [];
                ChunkedLinearAttention.Forward(device, shape, fq, fk, v, lambda, o,
                    new LinearAttentionOptions
                    {
                        Causal = causal, Normalize = normalize, ChunkSize = chunk,
                    });
                var expected = ReferenceLinearAttention.Forward(shape, fq, fk, v, lambda, causal,
                    normalize);
                var (worst, pass) = Compare(o, expected);
                count++;
                if (!pass) failed++;
                string label = $"{shape} {(causal ? "causal" : "global")}"
                    + $"{(normalize ? " norm" : "")}{(decay ? " decay" : "")} chunk "
                    + $"{chunk?.ToString() ?? "default"}";
                output.WriteLine($"{"linear/" + name,-34} {device.Kind,-10} {label,-52} "
                    + $"{worst,10:E2}  {(pass ? "pass" : "FAIL")}");
            }
        }
        var (stateWorst, stateOk) = PrefillThenSteps(device, x, xk, v);
        count++;
        if (!stateOk) failed++;
        output.WriteLine($"{"linear/state",-34} {device.Kind,-10} "
            + $"{"prefill 90 + 10 steps, decay, normalized",-52} {stateWorst,10:E2}  "
            + (stateOk ? "pass" : "FAIL"));
        return (count, failed);
    }

    private static IEnumerable<(bool Causal, bool Normalize, bool Decay, int? Chunk)> Cases(
        bool all)
    {
        if (!all)
        {
            yield return (true, true, false, null);
            yield break;
        }
        foreach (int? chunk in new int?[] { 1, 16, null })
            foreach (bool normalize in new[] { false, true })
            {
                yield return (true, normalize, false, chunk);
                yield return (true, normalize, true, chunk);
            }
        yield return (false, false, false, null);
        yield return (false, true, false, null);
    }

    /// <summary>Each map as a function of (x of the query heads, x of the KV heads) giving
    /// the device's features, and whether they match the host's.</summary>
    private static IEnumerable<(string, Func<float[], float[], (float[], float[], bool, double)>)>
        Maps(ComputeDevice device, float[] projection, float[] hedgehog)
    {
        yield return ("elu+1", (a, b) => Apply(device, default(EluPlusOneMap), default(EluPlusOneMap), a, b));
        yield return ("relu", (a, b) => Apply(device, default(ReluMap), default(ReluMap), a, b));
        yield return ("taylor", (a, b) => Apply(device, default(TaylorExpMap), default(TaylorExpMap), a, b));
        yield return ("cosformer", (a, b) => Apply(device, new CosFormerMap(Length),
            new CosFormerMap(Length), a, b));
        var hostProjection = new VariantTable<float>(projection);
        var hostHedgehog = new VariantTable<float>(hedgehog);
        var performer = new RandomFeatureMap<HostTable<float>>(hostProjection.Host, 32);
        yield return ("performer-32", (a, b) => device.IsHost
            ? Apply(device, performer, performer, a, b)
            : WithTables(device, hostProjection, t =>
                Apply(device, new RandomFeatureMap<DeviceTable<float>>(t, 32), performer, a, b)));
        // Hedgehog's weights are per head: the KV heads take the first KvHeads heads' weights.
        var hostKeys = new VariantTable<float>(hedgehog.AsSpan(0, KvHeads * 6 * (Dim + 1)));
        var hq = new HedgehogMap<HostTable<float>>(hostHedgehog.Host, 6);
        var hk = new HedgehogMap<HostTable<float>>(hostKeys.Host, 6);
        yield return ("hedgehog-6", (a, b) => device.IsHost
            ? Apply(device, hq, hk, hq, hk, a, b)
            : WithTables(device, hostHedgehog, tq => WithTables(device, hostKeys, tk =>
                Apply(device, new HedgehogMap<DeviceTable<float>>(tq, 6),
                    new HedgehogMap<DeviceTable<float>>(tk, 6), hq, hk, a, b))));
    }

    private static (float[], float[], bool, double) WithTables(ComputeDevice device,
        VariantTable<float> table, Func<DeviceTable<float>, (float[], float[], bool, double)> run)
    {
        using var buffer = table.Upload(device.Accelerator!);
        return run(new DeviceTable<float>(buffer.View.SubView(0, table.Length)));
    }

    private static (float[], float[], bool, double) Apply<TDevice, THost>(ComputeDevice device,
        TDevice onDevice, THost onHost, float[] xq, float[] xk)
        where TDevice : struct, IFeatureMap
        where THost : struct, IFeatureMap =>
        Apply(device, onDevice, onDevice, onHost, onHost, xq, xk);

    private static (float[], float[], bool, double) Apply<TDevice, THost>(ComputeDevice device,
        TDevice queryDevice, TDevice keyDevice, THost queryHost, THost keyHost, float[] xq,
        float[] xk)
        where TDevice : struct, IFeatureMap
        where THost : struct, IFeatureMap
    {
        var (onDevice, onHost) = (queryDevice, queryHost);
        int f = onHost.Features(Dim);
        var fq = new float[(long)Batch * Heads * Length * f];
        var fk = new float[(long)Batch * KvHeads * Length * f];
        FeatureMapping.Apply(device, onDevice, Batch, Heads, Length, Dim, xq, fq);
        FeatureMapping.Apply(device, keyDevice, Batch, KvHeads, Length, Dim, xk, fk);
        var hq = new float[fq.Length];
        var hk = new float[fk.Length];
        FeatureMapping.Apply(ComputeDevice.Host, onHost, Batch, Heads, Length, Dim, xq, hq);
        FeatureMapping.Apply(ComputeDevice.Host, keyHost, Batch, KvHeads, Length, Dim, xk, hk);
        double worst = 0;
        bool ok = true;
        foreach (var (a, e) in new[] { (fq, hq), (fk, hk) })
            for (int i = 0; i < a.Length; i++)
            {
                double err = Math.Abs(a[i] - e[i]);
                worst = Math.Max(worst, err);
                ok &= err <= 1e-6 + 1e-5 * Math.Abs(e[i]);
            }
        return (fq, fk, ok, worst);
    }

    private static (double, bool) PrefillThenSteps(ComputeDevice device, float[] xq, float[] xk,
        float[] v)
    {
        var map = default(EluPlusOneMap);
        var fq = new float[xq.Length];
        var fk = new float[xk.Length];
        FeatureMapping.Apply(ComputeDevice.Host, map, Batch, Heads, Length, Dim, xq, fq);
        FeatureMapping.Apply(ComputeDevice.Host, map, Batch, KvHeads, Length, Dim, xk, fk);
        float[] lambda = [0.97f, 0.9f];
        var options = new LinearAttentionOptions { Causal = true, Normalize = true };
        using var state = new LinearAttentionState(device, Batch, KvHeads, Dim, ValueDim);
        var output = new float[(long)Batch * Heads * Length * ValueDim];
        int prefix = 90;
        foreach (var (start, count) in new[] { (0, prefix) }.Concat(
            Enumerable.Range(prefix, Length - prefix).Select(t => (t, 1))))
        {
            var shape = new LinearAttentionShape(Batch, Heads, KvHeads, count, Dim, ValueDim);
            var q = Rows(fq, Batch * Heads, Dim, start, count);
            var k = Rows(fk, Batch * KvHeads, Dim, start, count);
            var vv = Rows(v, Batch * KvHeads, ValueDim, start, count);
            var o = new float[shape.OutputLength];
            ChunkedLinearAttention.Forward(device, shape, q, k, vv, lambda, o, options, state);
            for (int bh = 0; bh < Batch * Heads; bh++)
                Array.Copy(o, bh * count * ValueDim, output,
                    ((long)bh * Length + start) * ValueDim, count * ValueDim);
        }
        var full = new LinearAttentionShape(Batch, Heads, KvHeads, Length, Dim, ValueDim);
        var expected = ReferenceLinearAttention.Forward(full, fq, fk, v, lambda, true, true);
        return Compare(output, expected);
    }

    private static float[] Rows(float[] source, int sequences, int width, int start, int count)
    {
        var rows = new float[(long)sequences * count * width];
        for (int s = 0; s < sequences; s++)
            Array.Copy(source, ((long)s * Length + start) * width, rows, (long)s * count * width,
                count * width);
        return rows;
    }

    private static (double Worst, bool Ok) Compare(float[] actual, double[] expected)
    {
        double mean = expected.Average(Math.Abs), worst = 0;
        bool ok = true;
        for (int i = 0; i < actual.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            if (double.IsNaN(err)) { ok = false; continue; }
            worst = Math.Max(worst, err);
            ok &= err <= 1e-4 * (Math.Abs(expected[i]) + mean);
        }
        return (worst, ok);
    }
}
