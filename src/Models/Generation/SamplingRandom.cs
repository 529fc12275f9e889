namespace Managed.Models.Generation;

/// <summary>
/// The sampler's random numbers: xoshiro256** (Blackman and Vigna, 2018) whose four words of
/// state are the first four outputs of SplitMix64 started at the seed. The same seed gives the
/// same stream on every platform and runtime (unlike <see cref="Random"/>, whose seeded
/// algorithm is an implementation detail). A mutable struct: pass it by reference.
/// </summary>
public struct SamplingRandom
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>The stream of <paramref name="seed"/>.</summary>
    public SamplingRandom(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>The next 64 bits: rotl(s1 · 5, 7) · 9, then the xoshiro256 state step.
    /// </summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A double in [0, 1): the top 53 bits of <see cref="NextUInt64"/> · 2^-53.
    /// </summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    // SplitMix64 (Steele, Lea and Flood, 2014): the seeding xoshiro's authors recommend.
    private static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
