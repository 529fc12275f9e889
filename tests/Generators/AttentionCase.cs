using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;

namespace Managed.Tests.Generators;

/// <summary>
/// One random attention problem: a shape, an alignment, a registry variant index and the seed of
/// its data. Everything a case needs is derived from these fields, so a failing case printed by
/// FsCheck (or replayed from its Replay seed) rebuilds exactly the same tensors.
/// </summary>
public sealed record AttentionCase(
    AttentionShape Shape, QueryAlignment Alignment, int Variant, int Seed)
{
    private float[]? _query, _key, _value;

    /// <summary>
    /// Copy constructor used by <c>with</c>: the tensors are not copied, so a case derived with
    /// another shape or seed regenerates its data instead of keeping stale arrays.
    /// </summary>
    private AttentionCase(AttentionCase original)
    {
        Shape = original.Shape;
        Alignment = original.Alignment;
        Variant = original.Variant;
        Seed = original.Seed;
    }

    /// <summary>Q (batch, heads, seqQ, headDim), uniform in [-1, 1).</summary>
    public float[] Query => _query ??= Uniform(Seed, 0, Shape.QueryLength);

    /// <summary>K (batch, kvHeads, seqK, headDim), uniform in [-1, 1).</summary>
    public float[] Key => _key ??= Uniform(Seed, 1, Shape.KeyLength);

    /// <summary>V (batch, kvHeads, seqK, valueDim), uniform in [-1, 1).</summary>
    public float[] Value => _value ??= Uniform(Seed, 2, Shape.ValueLength);

    /// <summary>Options with this case's alignment and the default scale.</summary>
    public AttentionOptions Options => new() { Alignment = Alignment };

    /// <summary>A generator for further per-case randomness (splits, permutations).</summary>
    public Random Random(int stream) => new(Mix(Seed, stream + 16));

    /// <summary>Tensor of <paramref name="length"/> floats, uniform in [-1, 1).</summary>
    public static float[] Uniform(int seed, int stream, long length)
    {
        var random = new Random(Mix(seed, stream));
        var data = new float[length];
        for (long i = 0; i < length; i++) data[i] = (float)(2 * random.NextDouble() - 1);
        return data;
    }

    /// <summary>
    /// Deterministic seed of one stream. Not HashCode.Combine: that one is salted per process,
    /// which would make failures impossible to replay.
    /// </summary>
    public static int Mix(int seed, int stream) =>
        (int)(((uint)seed * 2654435761u) ^ ((uint)stream * 40503u + 0x9E3779B9u)) & int.MaxValue;

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Shape} {Alignment} variant={Variant} seed={Seed}";
}
