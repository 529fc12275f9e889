using Managed.Kernels.Devices;
using Managed.Kernels.Recurrent;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry.Mechanisms;
using Xunit;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.RecurrentMechanisms;

/// <summary>The checks of the recurrent mechanisms on any device (the host and ILGPU test
/// classes call them).</summary>
internal static class RecurrentChecks
{
    /// <summary>The EMA equals the fp64 recurrence (with and without the residual).</summary>
    public static void EmaMatchesRecurrence(ComputeDevice device, EmaShape s, int seed,
        bool residual = true)
    {
        var (x, alpha, delta, beta, eta, omega) = RecurrentData.Ema(s, seed);
        if (!residual) omega = [];
        var y = new float[s.SequenceLength];
        MultiDimensionalEma.Forward(device, s, x, alpha, delta, beta, eta, omega, y);
        var expected = ReferenceMega.EmaRecurrence(s, ToDouble(x), ToDouble(alpha),
            ToDouble(delta), ToDouble(beta), ToDouble(eta), ToDouble(omega));
        AssertClose(y, expected, 2e-5, 2e-4, $"EMA {s} residual={residual} seed={seed}");
    }

    /// <summary>Mega-chunk equals the fp64 layer with the same chunks.</summary>
    public static void MegaMatchesReference(ComputeDevice device, MegaShape s, int chunk,
        int seed)
    {
        var w = RecurrentData.Mega(s, seed, Math.Min(chunk, s.Length) - 1 + 2);
        var x = Uniform(seed + 7, s.SequenceLength);
        var y = new float[s.SequenceLength];
        MegaAttention.Forward(device, s, x, w, y, chunk);
        var expected = ReferenceMega.Layer(s, x, w, chunk);
        AssertClose(y, expected, 5e-5, 5e-4, $"Mega {s} chunk={chunk} seed={seed}");
    }

    /// <summary>Titans' memory with chunks of b equals the fp64 chunk-b definition, and its
    /// final state the reference's.</summary>
    public static void TitansMatchesChunkedReference(ComputeDevice device, TitansShape s,
        int chunk, int seed)
    {
        var a = RecurrentData.Titans(s, seed);
        var y = new float[s.ValueLength];
        var final = new float[s.StateLength];
        TitansMemory.Forward(device, s, a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha, y,
            chunk, default, final);
        var expectedState = new double[s.StateLength];
        var expected = ReferenceTitans.LinearMemoryChunked(s, a.Query, a.Key, a.Value, a.Theta,
            a.Eta, a.Alpha, chunk, default, expectedState);
        AssertClose(y, expected, 5e-5, 5e-4, $"Titans {s} chunk={chunk} seed={seed}");
        AssertClose(final, expectedState, 5e-5, 5e-4, $"Titans state {s} chunk={chunk}");
    }

    /// <summary>Chunk 1 equals the token-by-token recurrence of the paper.</summary>
    public static void TitansChunkOneIsRecurrence(ComputeDevice device, TitansShape s, int seed)
    {
        var a = RecurrentData.Titans(s, seed);
        var y = new float[s.ValueLength];
        TitansMemory.Forward(device, s, a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha, y, 1);
        var expected = ReferenceTitans.LinearMemoryRecurrent(s, a.Query, a.Key, a.Value,
            a.Theta, a.Eta, a.Alpha);
        AssertClose(y, expected, 5e-5, 5e-4, $"Titans {s} chunk 1 seed={seed}");
    }

    /// <summary>Two calls split at a chunk boundary, the state carried (in place), equal
    /// one call.</summary>
    public static void TitansStateContinues(ComputeDevice device, TitansShape s, int chunk,
        int split, int seed)
    {
        Assert.True(split % chunk == 0 && split > 0 && split < s.Length);
        var a = RecurrentData.Titans(s, seed);
        var whole = new float[s.ValueLength];
        var wholeState = new float[s.StateLength];
        TitansMemory.Forward(device, s, a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha,
            whole, chunk, default, wholeState);
        int items = s.Batch * s.Heads;
        var s1 = s with { Length = split };
        var s2 = s with { Length = s.Length - split };
        float[] Part(float[] t, int width, int from, int count) =>
            Rows(t, items, s.Length, width, from, count);
        var state = new float[s.StateLength];
        var y1 = new float[s1.ValueLength];
        var y2 = new float[s2.ValueLength];
        TitansMemory.Forward(device, s1, Part(a.Query, s.KeyDim, 0, split),
            Part(a.Key, s.KeyDim, 0, split), Part(a.Value, s.ValueDim, 0, split),
            Part(a.Theta, 1, 0, split), Part(a.Eta, 1, 0, split), Part(a.Alpha, 1, 0, split),
            y1, chunk, default, state);
        int rest = s.Length - split;
        TitansMemory.Forward(device, s2, Part(a.Query, s.KeyDim, split, rest),
            Part(a.Key, s.KeyDim, split, rest), Part(a.Value, s.ValueDim, split, rest),
            Part(a.Theta, 1, split, rest), Part(a.Eta, 1, split, rest),
            Part(a.Alpha, 1, split, rest), y2, chunk, state, state);
        AssertClose(y1, Part(whole, s.ValueDim, 0, split), 1e-6, 1e-5, "first part");
        AssertClose(y2, Part(whole, s.ValueDim, split, rest), 1e-6, 1e-5, "second part");
        AssertClose(state, wholeState, 1e-6, 1e-5, "final state");
    }

    /// <summary>The MLP memory with chunks of b equals the fp64 chunk-b definition, state
    /// included.</summary>
    public static void TitansMlpMatchesReference(ComputeDevice device, TitansMlpShape s,
        int chunk, int seed)
    {
        var rng = new Random(seed);
        var a = TitansMechanism.Inputs(rng, new(s.Batch, s.Heads, s.Length, s.KeyDim,
            s.ValueDim));
        var init = TitansMlpMechanism.InitialState(rng, s);
        var y = new float[s.ValueLength];
        var final = new float[s.StateLength];
        TitansMlpMemory.Forward(device, s, a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha, y,
            chunk, init, final);
        var expectedState = new double[s.StateLength];
        var expected = ReferenceTitans.MlpMemoryChunked(s, a.Query, a.Key, a.Value, a.Theta,
            a.Eta, a.Alpha, chunk, init, expectedState);
        AssertClose(y, expected, 5e-5, 5e-4, $"Titans MLP {s} chunk={chunk} seed={seed}");
        AssertClose(final, expectedState, 5e-5, 5e-4, $"Titans MLP state {s} chunk={chunk}");
    }

    /// <summary>The MLP memory advanced in place over two calls split at a chunk boundary
    /// equals one call.</summary>
    public static void TitansMlpStateContinues(ComputeDevice device, TitansMlpShape s,
        int chunk, int split, int seed)
    {
        var rng = new Random(seed);
        var a = TitansMechanism.Inputs(rng, new(s.Batch, s.Heads, s.Length, s.KeyDim,
            s.ValueDim));
        var init = TitansMlpMechanism.InitialState(rng, s);
        var whole = new float[s.ValueLength];
        TitansMlpMemory.Forward(device, s, a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha,
            whole, chunk, init);
        int items = s.Batch * s.Heads, rest = s.Length - split;
        float[] Part(float[] t, int width, int from, int count) =>
            Rows(t, items, s.Length, width, from, count);
        var state = (float[])init.Clone();
        var y1 = new float[(long)items * split * s.ValueDim];
        var y2 = new float[(long)items * rest * s.ValueDim];
        TitansMlpMemory.Forward(device, s with { Length = split },
            Part(a.Query, s.KeyDim, 0, split), Part(a.Key, s.KeyDim, 0, split),
            Part(a.Value, s.ValueDim, 0, split), Part(a.Theta, 1, 0, split),
            Part(a.Eta, 1, 0, split), Part(a.Alpha, 1, 0, split), y1, chunk, state, state);
        TitansMlpMemory.Forward(device, s with { Length = rest },
            Part(a.Query, s.KeyDim, split, rest), Part(a.Key, s.KeyDim, split, rest),
            Part(a.Value, s.ValueDim, split, rest), Part(a.Theta, 1, split, rest),
            Part(a.Eta, 1, split, rest), Part(a.Alpha, 1, split, rest), y2, chunk, state,
            state);
        AssertClose(y1, Part(whole, s.ValueDim, 0, split), 1e-6, 1e-5, "first part");
        AssertClose(y2, Part(whole, s.ValueDim, split, rest), 1e-6, 1e-5, "second part");
    }

    /// <summary>MAG equals the fp64 windowed attention times sigmoid of the fp64 memory;
    /// with theta = 0 (the memory reads 0) it is half the windowed attention alone.</summary>
    public static void TitansMagMatchesReference(ComputeDevice device, TitansMagShape s,
        int chunk, int seed, bool memoryOff = false)
    {
        var rng = new Random(seed);
        long attn = (long)s.Batch * s.Heads * s.Length * s.HeadDim;
        var q = Managed.Kernels.Registry.Mechanisms.MechanismInputs.Uniform(rng, attn);
        var k = Managed.Kernels.Registry.Mechanisms.MechanismInputs.Uniform(rng, attn);
        var v = Managed.Kernels.Registry.Mechanisms.MechanismInputs.Uniform(rng,
            s.Memory.ValueLength);
        var m = TitansMechanism.Inputs(rng, s.Memory);
        var theta = memoryOff ? new float[m.Theta.Length] : m.Theta;
        var y = new float[s.Memory.ValueLength];
        TitansGatedAttention.Forward(device, s, q, k, v, m.Query, m.Key, m.Value, theta, m.Eta,
            m.Alpha, y, chunk);
        var expected = ReferenceTitans.Mag(s, q, k, v, m.Query, m.Key, m.Value, theta, m.Eta,
            m.Alpha, chunk);
        AssertClose(y, expected, 5e-5, 5e-4, $"MAG {s} chunk={chunk} seed={seed}");
        if (!memoryOff) return;
        var window = new float[y.Length];
        var attention = s.Attention;
        Managed.Kernels.Attention.FlashAttention.Forward(device, attention, q, k, v, window,
            default, default(Managed.Kernels.Variants.NoScore),
            new Managed.Kernels.Variants.SinkWindowMask(s.PersistentTokens, s.Window),
            default(Managed.Kernels.Variants.SoftmaxNormalizer));
        for (int i = 0; i < y.Length; i++) Assert.Equal(window[i] * 0.5f, y[i], 6);
    }
}
