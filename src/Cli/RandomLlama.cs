using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Managed.Cli;

/// <summary>
/// `bench --random-llama-1b DIR`: writes a random-initialized Llama-shaped checkpoint of about
/// 1.1 B parameters in bf16, in Hugging Face format, so the model benchmarks need no Python.
/// The shape is TinyLlama's (hidden 2048, 22 layers, 32 heads over 4 KV heads, intermediate
/// 5632, vocab 32000, rope_theta 10000, untied lm_head). config.json as transformers writes
/// it; model.safetensors by this small writer: an 8-byte little-endian header length, the
/// JSON header (padded with spaces to a multiple of 8, as the reference writer does), then the
/// tensors back to back. Matrices are N(0, 0.02) (HF's initializer_range), norms 1; values are
/// drawn from a fixed seed, in parallel chunks, so the file is the same on every run.
/// </summary>
internal static class RandomLlama
{
    private const int Hidden = 2048, Layers = 22, Heads = 32, KvHeads = 4,
        Intermediate = 5632, Vocab = 32000;
    private const float Std = 0.02f;
    private const int Chunk = 1 << 20;   // elements drawn per parallel work item

    /// <summary>The config.json written (TinyLlama-1.1B's, bf16, untied).</summary>
    public static string ConfigJson => """
        {
          "architectures": ["LlamaForCausalLM"],
          "attention_bias": false,
          "attention_dropout": 0.0,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "head_dim": 64,
          "hidden_act": "silu",
          "hidden_size": 2048,
          "initializer_range": 0.02,
          "intermediate_size": 5632,
          "max_position_embeddings": 2048,
          "mlp_bias": false,
          "model_type": "llama",
          "num_attention_heads": 32,
          "num_hidden_layers": 22,
          "num_key_value_heads": 4,
          "rms_norm_eps": 1e-05,
          "rope_scaling": null,
          "rope_theta": 10000.0,
          "tie_word_embeddings": false,
          "torch_dtype": "bfloat16",
          "use_cache": true,
          "vocab_size": 32000
        }
        """;

    /// <summary>Writes config.json and model.safetensors into <paramref name="directory"/>
    /// (created if missing); returns the parameter count.</summary>
    public static long Write(string directory, TextWriter log)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "config.json"), ConfigJson + "\n");
        var tensors = Tensors();
        var header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach (var (name, shape, _) in tensors)
        {
            long bytes = 2L * shape.Aggregate(1L, (a, b) => a * b);
            header.Append(CultureInfo.InvariantCulture,
                $",\"{name}\":{{\"dtype\":\"BF16\",\"shape\":[{string.Join(',', shape)}],"
                + $"\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        header.Append('}');
        while (header.Length % 8 != 0)
            header.Append(' ');
        string path = Path.Combine(directory, "model.safetensors");
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None,
            1 << 20);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        file.Write(length);
        file.Write(Encoding.UTF8.GetBytes(header.ToString()));
        long parameters = 0;
        ulong seed = 0;
        var buffer = new byte[64 * Chunk * 2];   // 64 work items per write
        foreach (var (name, shape, random) in tensors)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            parameters += n;
            for (long done = 0; done < n; done += buffer.Length / 2)
            {
                int count = (int)Math.Min(buffer.Length / 2, n - done);
                var block = buffer.AsMemory(0, 2 * count);
                if (random)
                {
                    int items = (count + Chunk - 1) / Chunk;
                    ulong first = seed;
                    Parallel.For(0, items, i =>
                    {
                        int start = i * Chunk, len = Math.Min(Chunk, count - start);
                        FillNormal(block.Span.Slice(2 * start, 2 * len), first + (ulong)i);
                    });
                    seed += (ulong)items;
                }
                else
                    FillOnes(block.Span);
                file.Write(block.Span);
            }
        }
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {directory}: {parameters / 1e9:F3} B parameters, bf16, "
            + $"{file.Length / 1e9:F2} GB model.safetensors"));
        return parameters;
    }

    /// <summary>Every tensor in file order: name, shape and whether it is drawn (matrices)
    /// or ones (norms).</summary>
    private static List<(string Name, long[] Shape, bool Random)> Tensors()
    {
        const int headDim = Hidden / Heads;
        var list = new List<(string, long[], bool)>
        {
            ("model.embed_tokens.weight", [Vocab, Hidden], true),
        };
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            list.Add((p + "input_layernorm.weight", [Hidden], false));
            list.Add((p + "self_attn.q_proj.weight", [Heads * headDim, Hidden], true));
            list.Add((p + "self_attn.k_proj.weight", [KvHeads * headDim, Hidden], true));
            list.Add((p + "self_attn.v_proj.weight", [KvHeads * headDim, Hidden], true));
            list.Add((p + "self_attn.o_proj.weight", [Hidden, Heads * headDim], true));
            list.Add((p + "post_attention_layernorm.weight", [Hidden], false));
            list.Add((p + "mlp.gate_proj.weight", [Intermediate, Hidden], true));
            list.Add((p + "mlp.up_proj.weight", [Intermediate, Hidden], true));
            list.Add((p + "mlp.down_proj.weight", [Hidden, Intermediate], true));
        }
        list.Add(("model.norm.weight", [Hidden], false));
        list.Add(("lm_head.weight", [Vocab, Hidden], true));
        return list;
    }

    /// <summary>bf16 N(0, <see cref="Std"/>) values (Box-Muller over xoshiro256** seeded by
    /// SplitMix64 from <paramref name="seed"/>), little-endian.</summary>
    private static void FillNormal(Span<byte> bytes, ulong seed)
    {
        ulong s0 = SplitMix(ref seed), s1 = SplitMix(ref seed), s2 = SplitMix(ref seed),
            s3 = SplitMix(ref seed);
        int n = bytes.Length / 2;
        for (int i = 0; i < n; i += 2)
        {
            ulong r = BitOperations.RotateLeft(s1 * 5, 7) * 9, t = s1 << 17;
            s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = BitOperations.RotateLeft(s3, 45);
            // Two uniforms of 24 bits each from one draw; u1 in (0, 1] keeps the log finite.
            float u1 = ((r >> 40) + 1) * (1f / (1 << 24)), u2 = ((r >> 8) & 0xFFFFFF)
                * (1f / (1 << 24));
            float radius = Std * MathF.Sqrt(-2f * MathF.Log(u1));
            var (sin, cos) = MathF.SinCos(2f * MathF.PI * u2);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.Slice(2 * i), ToBf16(radius * cos));
            if (i + 1 < n)
                BinaryPrimitives.WriteUInt16LittleEndian(bytes.Slice(2 * i + 2),
                    ToBf16(radius * sin));
        }
    }

    private static void FillOnes(Span<byte> bytes)
    {
        for (int i = 0; i + 1 < bytes.Length; i += 2)
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.Slice(i), ToBf16(1f));
    }

    // Round to nearest even (the values are finite).
    private static ushort ToBf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
