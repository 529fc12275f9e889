using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Reference;
using Managed.Kernels.Variants;
using Xunit;
using Half = System.Half;

namespace Managed.Tests.Layouts;

/// <summary>
/// Strided rows, per-sequence key lengths and Half/BFloat16 storage in the attention kernels,
/// on the host and the ILGPU CPU accelerator: each equals, bit for bit, the dense float call
/// that the math says it is (the kernels visit the same tiles in the same order), and the
/// dense calls are checked against fp64 elsewhere; here once more against the reference.
/// </summary>
public sealed class AttentionLayoutTests
{
    public static TheoryData<DeviceKind> Devices() => new() { DeviceKind.Host, DeviceKind.IlgpuCpu };

    private static ComputeDevice Open(DeviceKind kind) =>
        kind == DeviceKind.Host ? ComputeDevice.Host : ComputeDevice.Open(kind);

    private static float[] Random(long n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>Dense (batch, heads, rows, dim) rewritten with <paramref name="strides"/> into a
    /// buffer of <paramref name="length"/> elements filled with <paramref name="fill"/>.</summary>
    private static float[] Restride(float[] dense, int batch, int heads, int rows, int dim,
        RowStrides strides, long length, float fill = float.NaN)
    {
        var x = new float[length];
        Array.Fill(x, fill);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int r = 0; r < rows; r++)
                    Array.Copy(dense, (((long)b * heads + h) * rows + r) * dim, x,
                        strides.Offset(b, h, r), dim);
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

    /// <summary>Q, K, V and the output in Hugging Face's (batch, seq, heads, dim) order, with
    /// padding between rows (NaN, never read; the output's gaps keep their values), equal the
    /// dense call bit for bit, with GQA and a causal mask.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void SequenceMajorEqualsDense(DeviceKind kind)
    {
        using var device = Open(kind);
        var s = new AttentionShape(2, 4, 2, 37, 70, 24, 16);
        float[] q = Random(s.QueryLength, 1), k = Random(s.KeyLength, 2), v = Random(s.ValueLength, 3);
        var dense = new float[s.OutputLength];
        var denseLse = new float[s.LogSumExpLength];
        FlashAttention.Forward(device, s, q, k, v, dense, denseLse, default(NoScore),
            default(CausalMask), default(SoftmaxNormalizer));

        // Rows padded by 8 elements: (batch, seq, heads, dim + 8).
        RowStrides Padded(int heads, int rows, int dim) =>
            new((long)rows * heads * (dim + 8), dim + 8, (long)heads * (dim + 8));
        var layout = new AttentionLayout
        {
            Query = Padded(s.Heads, s.SeqQ, s.HeadDim),
            Key = Padded(s.KvHeads, s.SeqK, s.HeadDim),
            Value = Padded(s.KvHeads, s.SeqK, s.ValueDim),
            Output = Padded(s.Heads, s.SeqQ, s.ValueDim),
        };
        float[] qs = Restride(q, s.Batch, s.Heads, s.SeqQ, s.HeadDim, layout.Query!.Value,
            (long)s.Batch * s.SeqQ * s.Heads * (s.HeadDim + 8));
        float[] ks = Restride(k, s.Batch, s.KvHeads, s.SeqK, s.HeadDim, layout.Key!.Value,
            (long)s.Batch * s.SeqK * s.KvHeads * (s.HeadDim + 8));
        float[] vs = Restride(v, s.Batch, s.KvHeads, s.SeqK, s.ValueDim, layout.Value!.Value,
            (long)s.Batch * s.SeqK * s.KvHeads * (s.ValueDim + 8));
        var o = new float[(long)s.Batch * s.SeqQ * s.Heads * (s.ValueDim + 8)];
        Array.Fill(o, 7f);
        var lse = new float[s.LogSumExpLength];
        FlashAttention.Forward(device, s, qs, ks, vs, o, lse, default(NoScore),
            default(CausalMask), default(SoftmaxNormalizer), new AttentionOptions { Layout = layout });

        Assert.Equal(dense, Gather(o, s.Batch, s.Heads, s.SeqQ, s.ValueDim, layout.Output!.Value));
        Assert.Equal(denseLse, lse);
        var written = new bool[o.Length];
        for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.Heads; h++)
                for (int r = 0; r < s.SeqQ; r++)
                    Array.Fill(written, true, (int)layout.Output!.Value.Offset(b, h, r), s.ValueDim);
        for (int i = 0; i < o.Length; i++)
            if (!written[i]) Assert.Equal(7f, o[i]);
    }

    /// <summary>A KV cache (batch, kvHeads, capacity, dim) with per-sequence lengths: each
    /// sequence equals a dense call over its own keys, with bottom-right alignment following
    /// its length; a sequence with no keys gives zeros and -infinity; keys past a length
    /// (NaN here) are never read.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void KeyLengthsEqualPerSequenceCalls(DeviceKind kind)
    {
        using var device = Open(kind);
        const int batch = 3, heads = 4, kvHeads = 2, seqQ = 3, capacity = 150, d = 32;
        int[] lengths = [130, 0, 65];
        var s = new AttentionShape(batch, heads, kvHeads, seqQ, capacity, d, d);
        float[] q = Random(s.QueryLength, 4), k = Random(s.KeyLength, 5), v = Random(s.ValueLength, 6);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < kvHeads; h++)
            {
                long from = (((long)b * kvHeads + h) * capacity + lengths[b]) * d;
                Array.Fill(k, float.NaN, (int)from, (capacity - lengths[b]) * d);
                Array.Fill(v, float.NaN, (int)from, (capacity - lengths[b]) * d);
            }
        var o = new float[s.OutputLength];
        var lse = new float[s.LogSumExpLength];
        var options = new AttentionOptions { Layout = new AttentionLayout { KeyLengths = lengths } };
        FlashAttention.Forward(device, s, q, k, v, o, lse, new SoftcapScore(5f),
            default(CausalMask), default(SoftmaxNormalizer), options);

        for (int b = 0; b < batch; b++)
        {
            int n = lengths[b];
            var rowsOut = o.AsSpan(b * heads * seqQ * d, heads * seqQ * d);
            var rowsLse = lse.AsSpan(b * heads * seqQ, heads * seqQ);
            if (n == 0)
            {
                Assert.All(rowsOut.ToArray(), x => Assert.Equal(0f, x));
                Assert.All(rowsLse.ToArray(), x => Assert.Equal(float.NegativeInfinity, x));
                continue;
            }
            var one = new AttentionShape(1, heads, kvHeads, seqQ, n, d, d);
            var qb = q.AsSpan(b * heads * seqQ * d, heads * seqQ * d).ToArray();
            float[] kb = new float[one.KeyLength], vb = new float[one.ValueLength];
            for (int h = 0; h < kvHeads; h++)
            {
                Array.Copy(k, ((long)b * kvHeads + h) * capacity * d, kb, (long)h * n * d, n * d);
                Array.Copy(v, ((long)b * kvHeads + h) * capacity * d, vb, (long)h * n * d, n * d);
            }
            var expected = new float[one.OutputLength];
            var expectedLse = new float[one.LogSumExpLength];
            FlashAttention.Forward(device, one, qb, kb, vb, expected, expectedLse,
                new SoftcapScore(5f), default(CausalMask), default(SoftmaxNormalizer));
            Assert.Equal(expected, rowsOut.ToArray());
            Assert.Equal(expectedLse, rowsLse.ToArray());
            var (refOut, _) = ReferenceAttention.Forward(one, qb, kb, vb, new SoftcapScore(5f),
                default(CausalMask), default(SoftmaxNormalizer));
            for (int i = 0; i < refOut.Length; i++)
                Assert.True(Math.Abs(expected[i] - refOut[i]) <= 2e-5 + 1e-4 * Math.Abs(refOut[i]),
                    $"element {i}: {expected[i]} vs fp64 {refOut[i]}");
        }
    }

    /// <summary>Half and BFloat16 storage equal, bit for bit, the float call on the widened
    /// values (the kernels widen exactly and then run the float arithmetic), for a score
    /// modifier and a window mask, on the register-tiled (D=64) and general (D=160) kernels.</summary>
    [Theory]
    [InlineData(DeviceKind.Host, 64)]
    [InlineData(DeviceKind.Host, 160)]
    [InlineData(DeviceKind.IlgpuCpu, 64)]
    [InlineData(DeviceKind.IlgpuCpu, 160)]
    public void HalfAndBFloat16EqualFloatOnWidenedValues(DeviceKind kind, int d)
    {
        using var device = Open(kind);
        var s = new AttentionShape(1, 2, 1, 40, 90, d, d);
        float[] q = Random(s.QueryLength, 7), k = Random(s.KeyLength, 8), v = Random(s.ValueLength, 9);
        var mask = new SlidingWindowMask(20, 13);

        Half[] qh = q.Select(x => (Half)x).ToArray(), kh = k.Select(x => (Half)x).ToArray(),
            vh = v.Select(x => (Half)x).ToArray();
        var oh = new float[s.OutputLength];
        var lh = new float[s.LogSumExpLength];
        FlashAttention.Forward<Half, AlibiScore, SlidingWindowMask, SoftmaxNormalizer>(device, s,
            qh, kh, vh, oh, lh, new AlibiScore(2), mask, default);
        var expected = new float[s.OutputLength];
        var expectedLse = new float[s.LogSumExpLength];
        FlashAttention.Forward(device, s, qh.Select(x => (float)x).ToArray(),
            kh.Select(x => (float)x).ToArray(), vh.Select(x => (float)x).ToArray(), expected,
            expectedLse, new AlibiScore(2), mask, default(SoftmaxNormalizer));
        Assert.Equal(expected, oh);
        Assert.Equal(expectedLse, lh);

        BFloat16[] qb = q.Select(BFloat16.FromSingle).ToArray(),
            kb = k.Select(BFloat16.FromSingle).ToArray(), vb = v.Select(BFloat16.FromSingle).ToArray();
        var ob = new float[s.OutputLength];
        FlashAttention.Forward<BFloat16, AlibiScore, SlidingWindowMask, SoftmaxNormalizer>(device,
            s, qb, kb, vb, ob, default, new AlibiScore(2), mask, default);
        float[] qw = qb.Select(BFloat16.ToSingle).ToArray(), kw = kb.Select(BFloat16.ToSingle).ToArray(),
            vw = vb.Select(BFloat16.ToSingle).ToArray();
        FlashAttention.Forward(device, s, qw, kw, vw, expected, default, new AlibiScore(2), mask,
            default(SoftmaxNormalizer));
        Assert.Equal(expected, ob);
        // And against fp64 on the rounded inputs.
        var (refOut, _) = ReferenceAttention.Forward(s, qw, kw, vw, new AlibiScore(2), mask,
            default(SoftmaxNormalizer));
        for (int i = 0; i < refOut.Length; i++)
            Assert.True(Math.Abs(ob[i] - refOut[i]) <= 2e-5 + 1e-4 * Math.Abs(refOut[i]),
                $"element {i}: {ob[i]} vs fp64 {refOut[i]}");
    }

    /// <summary>A clipped-softmax (two-pass) call with a strided output and typed storage: the
    /// scratch pass must not write through the output's strides.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void TwoPassNormalizerWithStridedOutput(DeviceKind kind)
    {
        using var device = Open(kind);
        var s = new AttentionShape(1, 2, 2, 20, 20, 16, 16);
        float[] q = Random(s.QueryLength, 10), k = Random(s.KeyLength, 11), v = Random(s.ValueLength, 12);
        var norm = new ClippedSoftmaxNormalizer(1.01f, -0.01f);
        var expected = new float[s.OutputLength];
        FlashAttention.Forward(device, s, q, k, v, expected, default, default(NoScore),
            default(CausalMask), norm);
        var strides = RowStrides.SequenceMajor(s.Heads, s.SeqQ, s.ValueDim);
        var o = new float[s.OutputLength];
        FlashAttention.Forward(device, s, q, k, v, o, default, default(NoScore),
            default(CausalMask), norm,
            new AttentionOptions { Layout = new AttentionLayout { Output = strides } });
        Assert.Equal(expected, Gather(o, s.Batch, s.Heads, s.SeqQ, s.ValueDim, strides));
    }

    /// <summary>Bad layouts are rejected by name before anything is written.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void BadLayoutsAreRejected(DeviceKind kind)
    {
        using var device = Open(kind);
        var s = new AttentionShape(2, 2, 2, 8, 8, 8, 8);
        float[] q = Random(s.QueryLength, 13), k = Random(s.KeyLength, 14), v = Random(s.ValueLength, 15);
        var o = new float[s.OutputLength];
        Array.Fill(o, 3f);

        void Expect(string param, string fragment, AttentionLayout layout, float[]? output = null)
        {
            var e = Assert.Throws<ArgumentException>(() => FlashAttention.Forward(device, s, q,
                k, v, output ?? o, default, default(NoScore), default(NoMask),
                default(SoftmaxNormalizer), new AttentionOptions { Layout = layout }));
            Assert.Equal(param, e.ParamName);
            Assert.Contains(fragment, e.Message);
            Assert.All(o, x => Assert.Equal(3f, x));
        }

        Expect("options", "KeyLengths has 1 entries", new AttentionLayout { KeyLengths = [8] });
        Expect("options", "KeyLengths[1] is 9", new AttentionLayout { KeyLengths = [8, 9] });
        Expect("options", "KeyLengths[0] is -1", new AttentionLayout { KeyLengths = [-1, 2] });
        // Output rows 4 apart with 8 dims: rows overlap.
        Expect("output", "overlap", new AttentionLayout { Output = new RowStrides(256, 64, 4) });
        Expect("key", "non-negative", new AttentionLayout { Key = new RowStrides(-1, 64, 8) });
        // Strides that reach past the span.
        Expect("query", "reach element", new AttentionLayout { Query = new RowStrides(1024, 64, 8) });
        // A dense tensor must have its exact length.
        Expect("output", "expected 256", default, new float[s.OutputLength + 1]);
    }
}
