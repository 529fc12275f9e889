using Managed.Kernels.Devices;
using Managed.Models;
using Managed.Tests.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace Managed.Tests.Models;

/// <summary>
/// Gated attention's output gate (<see cref="AttentionOutputGate"/>, catalog S1) on the
/// llama-gqa fixture: absent gates change nothing, gates ≡ 1 give exact attention, random
/// gates match an fp64 Llama forward written here (itself checked against HF's fp64 logits
/// without gates), prefill equals token-by-token decode, the ILGPU CPU accelerator equals
/// the host, and bad shapes are refused before the checkpoint is read.
/// </summary>
public sealed class GatedAttentionTests(IlgpuCpuFixture fixture, ITestOutputHelper output)
    : IClassFixture<IlgpuCpuFixture>
{
    private const string Fixture = "llama-gqa";

    [Fact]
    public void Gates_absent_give_the_ungated_logits_bit_for_bit()
    {
        var f = HfFixture.Load(Fixture);
        var plain = Logits(f, ComputeDevice.Host, null);
        var absent = Logits(f, ComputeDevice.Host, new AttentionOutputGate?[2]);
        Assert.Equal(plain, absent);
    }

    [Fact]
    public void Gates_of_one_give_exact_attention()
    {
        var f = HfFixture.Load(Fixture);
        var config = ModelConfig.Load(f.Directory);
        var open = AttentionOutputGate.Open(config.HeadCount, config.HiddenSize);
        var plain = Logits(f, ComputeDevice.Host, null);
        var gated = Logits(f, ComputeDevice.Host, [open, open]);
        double worst = MaxDiff(plain, gated);
        output.WriteLine($"gates = 1: max |gated - ungated| = {worst:E3}");
        Assert.True(worst <= 1e-6, $"{worst:E3}");
    }

    [Fact]
    public void Reference_without_gates_matches_hugging_face()
    {
        var f = HfFixture.Load(Fixture);
        var reference = Reference.Forward(f.Directory, f.Ids, null);
        double worst = 0;
        for (int i = 0; i < reference.Length; i++)
            worst = Math.Max(worst, Math.Abs(reference[i] - f.Logits[i]));
        output.WriteLine($"fp64 reference vs HF fp64: {worst:E3}");
        // HF's LlamaRMSNorm casts to fp32 even in an fp64 model (about 6e-7 here).
        Assert.True(worst <= 1e-5, $"{worst:E3}");
    }

    [Fact]
    public void Random_gates_match_the_fp64_reference_and_decode_equals_prefill()
    {
        var f = HfFixture.Load(Fixture);
        var gates = RandomGates(f.Directory, seed: 13);
        var reference = Reference.Forward(f.Directory, f.Ids, gates);
        var ungated = Reference.Forward(f.Directory, f.Ids, null);
        var prefill = Logits(f, ComputeDevice.Host, gates);
        double worst = 0, effect = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(prefill[i] - reference[i]));
            effect = Math.Max(effect, Math.Abs(reference[i] - ungated[i]));
        }
        double decode = MaxDiff(prefill, Decoded(f, ComputeDevice.Host, gates));
        output.WriteLine($"random gates: |host - fp64 ref| = {worst:E3}, gate effect "
            + $"{effect:E3}, |decode - prefill| = {decode:E3}");
        Assert.True(effect > 1e-2, $"the gates barely change the logits ({effect:E3})");
        Assert.True(worst <= 1e-4, $"host vs fp64 reference: {worst:E3}");
        Assert.True(decode <= 1e-5, $"decode vs prefill: {decode:E3}");
    }

    [Fact]
    public void Random_gates_on_the_ilgpu_cpu_accelerator_equal_the_host()
    {
        var f = HfFixture.Load(Fixture);
        var gates = RandomGates(f.Directory, seed: 13);
        var host = Logits(f, ComputeDevice.Host, gates);
        var device = fixture.Backend.Device;
        double prefill = MaxDiff(host, Logits(f, device, gates));
        double decode = MaxDiff(host, Decoded(f, device, gates));
        output.WriteLine($"{device.Name}: |prefill - host| = {prefill:E3}, "
            + $"|decode - host| = {decode:E3}");
        Assert.True(prefill <= 1e-5, $"prefill: {prefill:E3}");
        Assert.True(decode <= 1e-5, $"decode: {decode:E3}");
    }

    [Fact]
    public void Gate_shapes_that_do_not_fit_are_refused_before_loading()
    {
        var f = HfFixture.Load(Fixture);
        var c = ModelConfig.Load(f.Directory);
        int heads = c.HeadCount, hidden = c.HiddenSize;
        var good = AttentionOutputGate.Open(heads, hidden);
        var cases = new (AttentionOutputGate?[] Gates, string Message)[]
        {
            ([good], "OutputGates has 1 entries; the model has 2 layers"),
            ([good, new(new float[heads * hidden - 1], new float[heads])],
                "OutputGates[1].Weight has 255 elements; expected heads × hidden"),
            ([new(new float[heads * hidden], new float[heads + 1]), null],
                "OutputGates[0].Bias has 5 elements; expected heads = 4"),
            ([new(new float[hidden], new float[heads]), good],
                "OutputGates[0].Weight has 64 elements"),
        };
        foreach (var (gates, message) in cases)
        {
            // A checkpoint that cannot be opened: the shapes must fail first.
            string dir = Path.Combine(Path.GetTempPath(), "gate-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            try
            {
                File.Copy(Path.Combine(f.Directory, "config.json"), Path.Combine(dir,
                    "config.json"));
                var e = Assert.Throws<ArgumentException>(() => TransformerModel.Load(dir,
                    ComputeDevice.Host, new ModelOptions { OutputGates = gates }));
                Assert.Contains(message, e.Message, StringComparison.Ordinal);
                Assert.Equal(nameof(ModelOptions.OutputGates), e.ParamName);
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        Assert.Throws<ArgumentNullException>(() => new AttentionOutputGate(null!, []));
    }

    private static float[] Logits(HfFixture f, ComputeDevice device,
        IReadOnlyList<AttentionOutputGate?>? gates)
    {
        using var model = TransformerModel.Load(f.Directory, device,
            new ModelOptions { MaxLength = f.Ids.Length, OutputGates = gates });
        var logits = new float[f.Logits.Length];
        model.Append(0, f.Ids, logits);
        return logits;
    }

    // The first token as a prefill, then one Step per token (the decode kernel over the cache).
    private static float[] Decoded(HfFixture f, ComputeDevice device,
        IReadOnlyList<AttentionOutputGate?> gates)
    {
        using var model = TransformerModel.Load(f.Directory, device,
            new ModelOptions { MaxLength = f.Ids.Length, OutputGates = gates });
        int vocab = f.Vocab;
        var logits = new float[f.Logits.Length];
        model.Append(0, f.Ids.AsSpan(0, 1), logits.AsSpan(0, vocab));
        for (int t = 1; t < f.Ids.Length; t++)
            model.Step([f.Ids[t]], logits.AsSpan(t * vocab, vocab));
        return logits;
    }

    // Gates in (0, 1) that vary by token and head; layer 1 block-diagonal (the paper's
    // per-head form), layer 0 dense.
    private static AttentionOutputGate[] RandomGates(string directory, int seed)
    {
        var c = ModelConfig.Load(directory);
        int heads = c.HeadCount, hidden = c.HiddenSize, slice = hidden / heads;
        var random = new Random(seed);
        var gates = new AttentionOutputGate[c.LayerCount];
        for (int l = 0; l < gates.Length; l++)
        {
            var w = new float[heads * hidden];
            var b = new float[heads];
            for (int h = 0; h < heads; h++)
            {
                b[h] = (float)(random.NextDouble() * 2 - 1);
                for (int i = 0; i < hidden; i++)
                    if (l == 0 || i / slice == h)
                        w[h * hidden + i] = (float)(random.NextDouble() - 0.5);
            }
            gates[l] = new AttentionOutputGate(w, b);
        }
        return gates;
    }

    private static double MaxDiff(float[] a, float[] b)
    {
        double worst = 0;
        for (int i = 0; i < a.Length; i++)
            worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        return worst;
    }

    /// <summary>A Llama forward in fp64 over all tokens at once, as transformers writes it
    /// (RMSNorm, rotate-half RoPE, GQA causal softmax attention, SwiGLU), with gated
    /// attention's σ(w_h · x + b_h) on each head's output before o_proj.</summary>
    private static class Reference
    {
        public static double[] Forward(string directory, int[] ids,
            IReadOnlyList<AttentionOutputGate?>? gates)
        {
            var c = ModelConfig.Load(directory);
            using var ckpt = SafetensorsCheckpoint.Open(directory);
            double[] T(string name) => [.. ckpt[name].AsMemory<float>().ToArray()
                .Select(v => (double)v)];
            int n = ids.Length, hidden = c.HiddenSize, heads = c.HeadCount,
                kv = c.KvHeadCount, d = c.HeadDim, inner = c.IntermediateSize;
            var embed = T("model.embed_tokens.weight");
            var x = new double[n][];
            for (int t = 0; t < n; t++)
                x[t] = embed.AsSpan(ids[t] * hidden, hidden).ToArray();
            for (int l = 0; l < c.LayerCount; l++)
            {
                string p = $"model.layers.{l}.";
                var invFreq = c.Layers[l].Rope!.InverseFrequencies();
                var xn = x.Select(r => Norm(r, T(p + "input_layernorm.weight"),
                    c.NormEpsilon)).ToArray();
                var q = xn.Select(r => Linear(T(p + "self_attn.q_proj.weight"), r)).ToArray();
                var k = xn.Select(r => Linear(T(p + "self_attn.k_proj.weight"), r)).ToArray();
                var v = xn.Select(r => Linear(T(p + "self_attn.v_proj.weight"), r)).ToArray();
                for (int t = 0; t < n; t++)
                {
                    Rope(q[t], heads, d, invFreq, t);
                    Rope(k[t], kv, d, invFreq, t);
                }
                var o = new double[n][];
                for (int t = 0; t < n; t++)
                {
                    o[t] = new double[heads * d];
                    for (int h = 0; h < heads; h++)
                    {
                        int g = h / (heads / kv);
                        var s = new double[t + 1];
                        for (int j = 0; j <= t; j++)
                        {
                            double dot = 0;
                            for (int i = 0; i < d; i++)
                                dot += q[t][h * d + i] * k[j][g * d + i];
                            s[j] = dot / Math.Sqrt(d);
                        }
                        double max = s.Max(), sum = s.Sum(e => Math.Exp(e - max));
                        double gate = 1;
                        if (gates?[l] is { } gl)
                        {
                            double z = gl.Bias[h];
                            for (int i = 0; i < hidden; i++)
                                z += gl.Weight[h * hidden + i] * xn[t][i];
                            gate = 1 / (1 + Math.Exp(-z));
                        }
                        for (int j = 0; j <= t; j++)
                        {
                            double a = Math.Exp(s[j] - max) / sum * gate;
                            for (int i = 0; i < d; i++)
                                o[t][h * d + i] += a * v[j][g * d + i];
                        }
                    }
                }
                var wo = T(p + "self_attn.o_proj.weight");
                for (int t = 0; t < n; t++)
                    Add(x[t], Linear(wo, o[t]));
                var (wg, wu, wd) = (T(p + "mlp.gate_proj.weight"), T(p + "mlp.up_proj.weight"),
                    T(p + "mlp.down_proj.weight"));
                for (int t = 0; t < n; t++)
                {
                    var h2 = Norm(x[t], T(p + "post_attention_layernorm.weight"),
                        c.NormEpsilon);
                    var gt = Linear(wg, h2);
                    var up = Linear(wu, h2);
                    var act = new double[inner];
                    for (int i = 0; i < inner; i++)
                        act[i] = gt[i] / (1 + Math.Exp(-gt[i])) * up[i];
                    Add(x[t], Linear(wd, act));
                }
            }
            var head = T("lm_head.weight");
            var final = T("model.norm.weight");
            return [.. x.SelectMany(r => Linear(head, Norm(r, final, c.NormEpsilon)))];
        }

        private static double[] Norm(double[] x, double[] w, double eps)
        {
            double ms = x.Sum(e => e * e) / x.Length, scale = 1 / Math.Sqrt(ms + eps);
            return [.. x.Select((e, i) => e * scale * w[i])];
        }

        // y = W x, W (rows, x.Length) row-major.
        private static double[] Linear(double[] w, double[] x)
        {
            var y = new double[w.Length / x.Length];
            for (int r = 0; r < y.Length; r++)
                for (int i = 0; i < x.Length; i++)
                    y[r] += w[r * x.Length + i] * x[i];
            return y;
        }

        private static void Rope(double[] x, int heads, int d, double[] invFreq, int position)
        {
            int half = d / 2;
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < half; i++)
                {
                    double angle = position * invFreq[i], c = Math.Cos(angle),
                        s = Math.Sin(angle);
                    double a = x[h * d + i], b = x[h * d + i + half];
                    x[h * d + i] = a * c - b * s;
                    x[h * d + i + half] = b * c + a * s;
                }
        }

        private static void Add(double[] x, double[] y)
        {
            for (int i = 0; i < x.Length; i++)
                x[i] += y[i];
        }
    }
}
