using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Half = System.Half;

namespace Managed.Cli;

/// <summary>
/// The layouts and storage types of the attention kernels on one device, against the fp64
/// reference on the values the kernel reads (rounded to the storage type): dense, Hugging
/// Face's (batch, seq, heads, dim) with padded rows, and a KV cache of larger capacity with
/// per-sequence key lengths; each in float, Half and BFloat16, on the register-tiled and
/// general kernels. With --large on an ILGPU device, one row places K and V past element 2^31
/// of their buffer (64-bit offsets). Pass rule as <see cref="CheckCommand"/>'s.
/// </summary>
internal static class LayoutCheck
{
    private enum Layout { Dense, SequenceMajor, Cache }

    public static (int Checked, int Failed) Run(ComputeDevice device, bool large, TextWriter output)
    {
        int count = 0, failed = 0;
        var shapes = new[]
        {
            new AttentionShape(2, 8, 2, 37, 300, 128, 128),
            new AttentionShape(1, 4, 4, 70, 70, 64, 64),
            new AttentionShape(2, 2, 1, 20, 100, 256, 256),
        };
        foreach (var shape in shapes)
            foreach (var layout in Enum.GetValues<Layout>())
                foreach (var storage in new[] { "float", "half", "bfloat16" })
                {
                    bool ok = storage switch
                    {
                        "half" => Case<Half>(device, shape, layout, x => (Half)x, x => (float)x, output),
                        "bfloat16" => Case<BFloat16>(device, shape, layout, BFloat16.FromSingle,
                            BFloat16.ToSingle, output),
                        _ => Case<float>(device, shape, layout, x => x, x => x, output),
                    };
                    count++;
                    if (!ok) failed++;
                }
        if (large && !device.IsHost)
        {
            count++;
            if (!BeyondInt32(device, output)) failed++;
        }
        return (count, failed);
    }

    private static bool Case<T>(ComputeDevice device, AttentionShape s, Layout layout,
        Func<float, T> narrow, Func<T, float> widen, TextWriter output)
        where T : unmanaged
    {
        var rng = new Random(s.GetHashCode() & 0x7fff ^ (int)layout);
        float[] q = Rounded(rng, s.QueryLength, narrow, widen), k = Rounded(rng, s.KeyLength, narrow, widen),
            v = Rounded(rng, s.ValueLength, narrow, widen);
        int[]? lengths = layout == Layout.Cache
            ? Enumerable.Range(0, s.Batch).Select(b => s.SeqK - 97 * b).ToArray() : null;
        RowStrides Rows(int heads, int rows, int dim) => layout == Layout.SequenceMajor
            ? new RowStrides((long)rows * heads * (dim + 4), dim + 4, (long)heads * (dim + 4))
            : RowStrides.HeadMajor(heads, rows, dim);
        var qs = Rows(s.Heads, s.SeqQ, s.HeadDim);
        var ks = Rows(s.KvHeads, s.SeqK, s.HeadDim);
        var vs = Rows(s.KvHeads, s.SeqK, s.ValueDim);
        var os = Rows(s.Heads, s.SeqQ, s.ValueDim);
        var options = new AttentionOptions
        {
            Layout = new AttentionLayout
            {
                Query = qs, Key = ks, Value = vs, Output = os, KeyLengths = lengths,
            },
        };
        T[] qt = Scatter(q, s.Batch, s.Heads, s.SeqQ, s.HeadDim, qs, narrow);
        T[] kt = Scatter(k, s.Batch, s.KvHeads, s.SeqK, s.HeadDim, ks, narrow);
        T[] vt = Scatter(v, s.Batch, s.KvHeads, s.SeqK, s.ValueDim, vs, narrow);
        var o = new float[os.Extent(s.Batch, s.Heads, s.SeqQ, s.ValueDim)];
        var lse = new float[s.LogSumExpLength];
        var score = new SoftcapScore(20f);
        FlashAttention.Forward<T, SoftcapScore, CausalMask, SoftmaxNormalizer>(device, s, qt, kt,
            vt, o, lse, score, default, default, options);
        float[] dense = Gather(o, s.Batch, s.Heads, s.SeqQ, s.ValueDim, os);

        // The reference, one sequence at a time over its own keys.
        bool ok = true;
        double worst = 0;
        for (int b = 0; b < s.Batch; b++)
        {
            int n = lengths?[b] ?? s.SeqK;
            var one = s with { Batch = 1, SeqK = n };
            float[] qb = q.AsSpan((int)(b * one.QueryLength), (int)one.QueryLength).ToArray();
            float[] kb = Keys(k, b, s.KvHeads, s.SeqK, n, s.HeadDim);
            float[] vb = Keys(v, b, s.KvHeads, s.SeqK, n, s.ValueDim);
            var (refO, refLse) = ReferenceAttention.Forward(one, qb, kb, vb, score,
                default(CausalMask), default(SoftmaxNormalizer));
            var (abs, _, okO) = CheckCommand.CompareOutput(
                dense.AsSpan((int)(b * one.OutputLength), (int)one.OutputLength), refO, refLse,
                one, vb, weightRounding: FlashAttention.WeightRounding<T>(device, s));
            var (absL, _, okL) = CheckCommand.Compare(
                lse.AsSpan((int)(b * one.LogSumExpLength), (int)one.LogSumExpLength), refLse);
            ok &= okO && okL;
            worst = Math.Max(worst, Math.Max(abs, absL));
        }
        string type = typeof(T) == typeof(float) ? "float" : typeof(T).Name.ToLowerInvariant();
        string name = $"layout/{layout.ToString().ToLowerInvariant()}/{type}";
        output.WriteLine($"{name,-34} {device.Kind,-10} {s,-52} {worst,10:E2}  {(ok ? "pass" : "FAIL")}");
        return ok;
    }

    /// <summary>K and V of a second KV head placed past element 2^31 of one Half buffer
    /// (4.3 GB), read through 64-bit offsets; checked against the reference.</summary>
    private static bool BeyondInt32(ComputeDevice device, TextWriter output)
    {
        var s = new AttentionShape(1, 4, 2, 64, 512, 64, 64);
        long headStride = (1L << 31) + 4096;
        var rng = new Random(31);
        float[] q = Rounded(rng, s.QueryLength, x => (Half)x, x => (float)x);
        float[] k = Rounded(rng, s.KeyLength, x => (Half)x, x => (float)x);
        float[] v = Rounded(rng, s.ValueLength, x => (Half)x, x => (float)x);
        var ks = new RowStrides(0, headStride, s.HeadDim);
        var vs = new RowStrides(0, headStride, s.ValueDim);
        long vStart = s.SeqK * (long)s.HeadDim; // V's rows follow K's in each head
        var o = new float[s.OutputLength];
        var lse = new float[s.LogSumExpLength];
        var acc = device.Accelerator
            ?? throw new InvalidOperationException("The host has no accelerator.");
        using (var big = acc.Allocate1D<Half>(headStride + vStart + s.SeqK * (long)s.ValueDim))
        using (var dq = acc.Allocate1D(q.Select(x => (Half)x).ToArray()))
        using (var dO = acc.Allocate1D<float>(o.Length))
        using (var dLse = acc.Allocate1D<float>(lse.Length))
        {
            for (int h = 0; h < s.KvHeads; h++)
            {
                int rows = s.SeqK * s.HeadDim;
                big.View.SubView(h * headStride, rows).CopyFromCPU(
                    k.AsSpan(h * rows, rows).ToArray().Select(x => (Half)x).ToArray());
                big.View.SubView(h * headStride + vStart, rows).CopyFromCPU(
                    v.AsSpan(h * rows, rows).ToArray().Select(x => (Half)x).ToArray());
            }
            var options = new AttentionOptions { Layout = new AttentionLayout { Key = ks, Value = vs } };
            var kView = big.View.SubView(0, headStride + vStart);
            var vView = big.View.SubView(vStart, headStride + s.SeqK * (long)s.ValueDim);
            FlashAttention.Forward<Half, NoScore, CausalMask, SoftmaxNormalizer>(device, s,
                dq.View, kView, vView, dO.View, dLse.View, default, default, default, options);
            device.Synchronize();
            dO.View.CopyToCPU(o);
            dLse.View.CopyToCPU(lse);
        }
        var (refO, refLse) = ReferenceAttention.Forward(s, q, k, v, default(NoScore),
            default(CausalMask), default(SoftmaxNormalizer));
        var (abs, _, ok) = CheckCommand.CompareOutput(o, refO, refLse, s, v);
        var (absL, _, okL) = CheckCommand.Compare(lse, refLse);
        ok &= okL;
        output.WriteLine($"{"layout/offsets-past-2^31/half",-34} {device.Kind,-10} {s,-52} "
            + $"{Math.Max(abs, absL),10:E2}  {(ok ? "pass" : "FAIL")}");
        return ok;
    }

    private static float[] Rounded<T>(Random rng, long n, Func<float, T> narrow, Func<T, float> widen)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = widen(narrow((float)(rng.NextDouble() * 2 - 1)));
        return x;
    }

    private static T[] Scatter<T>(float[] dense, int batch, int heads, int rows, int dim,
        RowStrides strides, Func<float, T> narrow)
    {
        var x = new T[strides.Extent(batch, heads, rows, dim)];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int r = 0; r < rows; r++)
                {
                    long from = (((long)b * heads + h) * rows + r) * dim, to = strides.Offset(b, h, r);
                    for (int c = 0; c < dim; c++) x[to + c] = narrow(dense[from + c]);
                }
        return x;
    }

    private static float[] Gather(float[] strided, int batch, int heads, int rows, int dim,
        RowStrides strides)
    {
        var x = new float[(long)batch * heads * rows * dim];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int r = 0; r < rows; r++)
                    Array.Copy(strided, strides.Offset(b, h, r), x,
                        (((long)b * heads + h) * rows + r) * dim, dim);
        return x;
    }

    // The first n keys of every KV head of sequence b, dense.
    private static float[] Keys(float[] x, int b, int kvHeads, int capacity, int n, int dim)
    {
        var y = new float[(long)kvHeads * n * dim];
        for (int h = 0; h < kvHeads; h++)
            Array.Copy(x, ((long)b * kvHeads + h) * capacity * dim, y, (long)h * n * dim, (long)n * dim);
        return y;
    }
}
