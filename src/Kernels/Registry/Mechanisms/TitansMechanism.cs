using Managed.Kernels.Devices;
using Managed.Kernels.Recurrent;
using Managed.Kernels.Reference;
using static Managed.Kernels.Registry.Mechanisms.MechanismInputs;

namespace Managed.Kernels.Registry.Mechanisms;

/// <summary>Random inputs of one Titans memory call.</summary>
internal sealed record TitansInputs(float[] Query, float[] Key, float[] Value, float[] Theta,
    float[] Eta, float[] Alpha);

/// <summary>L12 <see cref="TitansMemory"/> (linear memory) against the fp64 chunk-b
/// definition of <see cref="ReferenceTitans"/>, chunks of 16 at a length that is not a
/// multiple, and chunk 1 against the token-by-token recurrence.</summary>
internal sealed class TitansMechanism : IMechanism
{
    public string Name => "titans-linear-memory";
    public string CatalogId => "L12";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var shape = new TitansShape(2, 2, 45, 8, 6);
        var a = Inputs(rng, shape);
        var results = new List<MechanismResult>();
        foreach (int chunk in new[] { 16, 1 })
        {
            var y = new float[shape.ValueLength];
            TitansMemory.Forward(device, shape, a.Query, a.Key, a.Value, a.Theta, a.Eta,
                a.Alpha, y, chunk);
            var expected = chunk == 1
                ? ReferenceTitans.LinearMemoryRecurrent(shape, a.Query, a.Key, a.Value,
                    a.Theta, a.Eta, a.Alpha)
                : ReferenceTitans.LinearMemoryChunked(shape, a.Query, a.Key, a.Value, a.Theta,
                    a.Eta, a.Alpha, chunk);
            results.Add(new($"{shape} chunk {chunk}{(chunk == 1 ? " (recurrence)" : "")}", y,
                expected));
        }
        return results;
    }

    /// <summary>Random inputs: q, k in +-0.5, v in +-1, theta in [0.02, 0.2), eta in
    /// [0.5, 0.95), alpha in [0, 0.1) (a stable inner optimizer: 2 theta |k|^2 &lt; 1).
    /// </summary>
    public static TitansInputs Inputs(Random rng, TitansShape shape)
    {
        float[] Range(float lo, float hi) => Array.ConvertAll(
            Uniform(rng, shape.GateLength, 0.5f), u => lo + (u + 0.5f) * (hi - lo));
        return new(Uniform(rng, shape.KeyLength, 0.5f), Uniform(rng, shape.KeyLength, 0.5f),
            Uniform(rng, shape.ValueLength), Range(0.02f, 0.2f), Range(0.5f, 0.95f),
            Range(0f, 0.1f));
    }
}

/// <summary>L12 <see cref="TitansMlpMemory"/> (the paper's 2-layer memory, SiLU) against the
/// fp64 chunk-b definition of <see cref="ReferenceTitans"/>, chunks of 8 at a length that is
/// not a multiple, and chunk 1 (the token-by-token recurrence).</summary>
internal sealed class TitansMlpMechanism : IMechanism
{
    public string Name => "titans-mlp-memory";
    public string CatalogId => "L12";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var shape = new TitansMlpShape(2, 2, 29, 6, 10, 5);
        var lin = new TitansShape(shape.Batch, shape.Heads, shape.Length, shape.KeyDim,
            shape.ValueDim);
        var a = TitansMechanism.Inputs(rng, lin);
        var init = InitialState(rng, shape);
        var results = new List<MechanismResult>();
        foreach (int chunk in new[] { 8, 1 })
        {
            var y = new float[shape.ValueLength];
            TitansMlpMemory.Forward(device, shape, a.Query, a.Key, a.Value, a.Theta, a.Eta,
                a.Alpha, y, chunk, init);
            var expected = ReferenceTitans.MlpMemoryChunked(shape, a.Query, a.Key, a.Value,
                a.Theta, a.Eta, a.Alpha, chunk, init);
            results.Add(new($"{shape} chunk {chunk}", y, expected));
        }
        return results;
    }

    /// <summary>A random initial memory M_0: W1 in +-1/sqrt(keyDim), W2 in
    /// +-1/sqrt(hiddenDim), the surprises S1, S2 in +-0.01.</summary>
    public static float[] InitialState(Random rng, TitansMlpShape s)
    {
        var state = new float[s.StateLength];
        int l1 = s.HiddenDim * s.KeyDim, l2 = s.ValueDim * s.HiddenDim, at = 0;
        for (int bh = 0; bh < s.Batch * s.Heads; bh++)
            foreach (var (len, scale) in new[] { (l1, 1f / MathF.Sqrt(s.KeyDim)), (l1, 0.01f),
                (l2, 1f / MathF.Sqrt(s.HiddenDim)), (l2, 0.01f) })
            {
                Uniform(rng, len, scale).CopyTo(state, at);
                at += len;
            }
        return state;
    }
}

/// <summary>L12 <see cref="TitansGatedAttention"/> (MAG: 4 persistent tokens, a causal
/// window of 8, the linear memory in chunks of 8) against the fp64 windowed attention and
/// chunked memory of <see cref="ReferenceTitans"/>.</summary>
internal sealed class TitansMagMechanism : IMechanism
{
    public string Name => "titans-mag-window8";
    public string CatalogId => "L12";

    public IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed)
    {
        var rng = new Random(seed);
        var shape = new TitansMagShape(2, 2, 37, 8, 6, 5, 4, 8);
        var (q, k, v) = (Uniform(rng, (long)shape.Batch * shape.Heads * shape.Length * 8),
            Uniform(rng, (long)shape.Batch * shape.Heads * shape.Length * 8),
            Uniform(rng, shape.Memory.ValueLength));
        var mem = TitansMechanism.Inputs(rng, shape.Memory);
        var y = new float[shape.Memory.ValueLength];
        TitansGatedAttention.Forward(device, shape, q, k, v, mem.Query, mem.Key, mem.Value,
            mem.Theta, mem.Eta, mem.Alpha, y, 8);
        var expected = ReferenceTitans.Mag(shape, q, k, v, mem.Query, mem.Key, mem.Value,
            mem.Theta, mem.Eta, mem.Alpha, 8);
        return [new($"B={shape.Batch} H={shape.Heads} N={shape.Length} D={shape.HeadDim} "
            + $"Dk={shape.KeyDim} Dv={shape.ValueDim} {shape.PersistentTokens} persistent, "
            + $"window {shape.Window}, memory chunk 8", y, expected)];
    }
}
