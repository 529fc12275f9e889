using Managed.Kernels.Devices;
using Managed.Kernels.Recurrent;
using Managed.Tests.Mechanisms;
using Xunit;

namespace Managed.Tests.RecurrentMechanisms;

/// <summary>
/// Bad calls of the EMA, Mega and Titans' memory throw an <see cref="ArgumentException"/>
/// naming the argument and what was expected, before anything is written (the output keeps
/// its sentinel), on the host and before any staging on an ILGPU device.
/// </summary>
public sealed class RecurrentValidationTests
{
    private static ComputeDevice Host => ComputeDevice.Host;

    private static void AssertBad(string param, string message, float[] output, Action call) =>
        MechanismValidationTests.AssertBad(param, message, output, call);

    [Fact]
    public void EmaRejectsBadArguments()
    {
        var s = new EmaShape(2, 5, 3, 2);
        var (x, alpha, delta, beta, eta, omega) = RecurrentData.Ema(s, 1);
        var y = new float[s.SequenceLength];
        AssertBad("x", "expected 30 = batch 2 x length 5 x dim 3", y, () =>
            MultiDimensionalEma.Forward(Host, s, x[1..], alpha, delta, beta, eta, omega, y));
        AssertBad("alpha", "expected 6 = dim 3 x emaDims 2", y, () =>
            MultiDimensionalEma.Forward(Host, s, x, alpha[1..], delta, beta, eta, omega, y));
        AssertBad("omega", "dim 3 (or empty)", y, () =>
            MultiDimensionalEma.Forward(Host, s, x, alpha, delta, beta, eta, omega[1..], y));
        var badDelta = (float[])delta.Clone();
        badDelta[4] = 1.5f;
        AssertBad("delta", "delta[4] is 1.5; expected a damping factor in (0, 1]", y, () =>
            MultiDimensionalEma.Forward(Host, s, x, alpha, badDelta, beta, eta, omega, y));
        var badEta = (float[])eta.Clone();
        badEta[0] = float.NaN;
        AssertBad("eta", "expected finite", y, () =>
            MultiDimensionalEma.Forward(Host, s, x, alpha, delta, beta, badEta, omega, y));
        AssertBad("shape", "EmaDims must be positive", y, () =>
            MultiDimensionalEma.Forward(Host, s with { EmaDims = 0 }, x, alpha, delta, beta,
                eta, omega, y));
        AssertBad("output", "expected 30", y, () =>
            MultiDimensionalEma.Forward(Host, s, x, alpha, delta, beta, eta, omega,
                new float[29]));
        AssertBad("output", "must not overlap", y, () =>
        {
            var both = new float[s.SequenceLength];
            MultiDimensionalEma.Forward(Host, s, both, alpha, delta, beta, eta, omega, both);
            throw new InvalidOperationException("not rejected");
        });
    }

    [Fact]
    public void EmaRejectsTooManyDimsOnIlgpuDevices()
    {
        using var device = ComputeDevice.Open(DeviceKind.IlgpuCpu);
        var s = new EmaShape(1, 3, 2, MultiDimensionalEma.DeviceMaxEmaDims + 1);
        var (x, alpha, delta, beta, eta, omega) = RecurrentData.Ema(s, 2);
        var y = new float[s.SequenceLength];
        AssertBad("shape", $"at most {MultiDimensionalEma.DeviceMaxEmaDims}", y, () =>
            MultiDimensionalEma.Forward(device, s, x, alpha, delta, beta, eta, omega, y));
    }

    [Fact]
    public void MegaRejectsBadArguments()
    {
        var s = new MegaShape(1, 10, 6, 4, 5, 2);
        var w = RecurrentData.Mega(s, 3, 3);
        var x = new float[s.SequenceLength];
        var y = new float[s.SequenceLength];
        AssertBad("chunkSize", "chunkSize must be positive, got 0", y, () =>
            MegaAttention.Forward(Host, s, x, w, y, 0));
        AssertBad("x", "expected 60 = batch 1 x length 10 x dim 6", y, () =>
            MegaAttention.Forward(Host, s, x[1..], w, y, 4));
        AssertBad("weights", "weights.ZWeight has 24 elements; expected 30 = zDim 5 x dim 6",
            y, () => MegaAttention.Forward(Host, s with { ZDim = 5 }, x, w, y, 4));
        AssertBad("weights", "weights.HuWeight has 30 elements; expected 36 = dim 6 x hDim 6",
            y, () => MegaAttention.Forward(Host, s with { HDim = 6 }, x,
                RecurrentData.Mega(s, 3, 3) is var v ? new MegaWeights
                {
                    EmaAlpha = v.EmaAlpha, EmaDelta = v.EmaDelta, EmaBeta = v.EmaBeta,
                    EmaEta = v.EmaEta, EmaOmega = v.EmaOmega, ValueWeight = new float[36],
                    ValueBias = new float[6], ZWeight = v.ZWeight, ZBias = v.ZBias,
                    QkScale = v.QkScale, QkOffset = v.QkOffset, RelativeBias = v.RelativeBias,
                    GammaWeight = new float[36], GammaBias = new float[6],
                    PhiWeight = v.PhiWeight, PhiBias = v.PhiBias, HxWeight = v.HxWeight,
                    HxBias = v.HxBias, HuWeight = v.HuWeight,
                } : v, y, 4));
        // A bias table of radius 3 covers chunks of up to 4 tokens.
        AssertBad("weights", "expected an odd length 2 R + 1 >= 9", y, () =>
            MegaAttention.Forward(Host, s, x, w, y, 5));
        var bad = w.EmaAlpha;
        float keep = bad[1];
        bad[1] = 0f;
        AssertBad("weights", "EmaAlpha[1] is 0", y,
            () => MegaAttention.Forward(Host, s, x, w, y, 4));
        bad[1] = keep;
        AssertBad("output", "must not overlap", y, () =>
        {
            var both = new float[s.SequenceLength];
            MegaAttention.Forward(Host, s, both, w, both, 4);
            throw new InvalidOperationException("not rejected");
        });
        Assert.Throws<ArgumentNullException>(() => MegaAttention.Forward(Host, s, x, null!, y, 4));
    }

    [Fact]
    public void TitansRejectsBadArguments()
    {
        var s = new TitansShape(1, 2, 6, 3, 4);
        var a = RecurrentData.Titans(s, 4);
        var y = new float[s.ValueLength];
        void Call(TitansShape shape, float[]? q = null, float[]? theta = null,
            float[]? alpha = null, float[]? output = null, int chunk = 2, float[]? init = null,
            float[]? final = null) =>
            TitansMemory.Forward(Host, shape, q ?? a.Query, a.Key, a.Value, theta ?? a.Theta,
                a.Eta, alpha ?? a.Alpha, output ?? y, chunk, init, final);
        AssertBad("query", "expected 36 = batch 1 x heads 2 x length 6 x keyDim 3", y,
            () => Call(s, q: a.Query[1..]));
        AssertBad("theta", "expected 12 = batch 1 x heads 2 x length 6", y,
            () => Call(s, theta: new float[11]));
        AssertBad("chunkSize", "chunkSize must be positive, got 0", y, () => Call(s, chunk: 0));
        var alpha = (float[])a.Alpha.Clone();
        alpha[3] = 1.25f;
        AssertBad("alpha", "alpha[3] is 1.25; expected a forgetting gate in [0, 1]", y,
            () => Call(s, alpha: alpha));
        var theta = (float[])a.Theta.Clone();
        theta[2] = float.PositiveInfinity;
        AssertBad("theta", "expected finite", y, () => Call(s, theta: theta));
        AssertBad("initialState",
            "expected 48 = batch 1 x heads 2 x 2 x valueDim 4 x keyDim 3 (or empty)", y,
            () => Call(s, init: new float[47]));
        AssertBad("finalState", "(or empty)", y, () => Call(s, final: new float[49]));
        AssertBad("shape", "KeyDim must be positive", y, () => Call(s with { KeyDim = 0 }));
        var state = new float[s.StateLength + 1];
        AssertBad("finalState", "either initialState itself or apart", y, () =>
            TitansMemory.Forward(Host, s, a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha, y,
                2, state.AsSpan(0, (int)s.StateLength), state.AsSpan(1)));
    }

    [Fact]
    public void TitansMlpAndMagRejectBadArguments()
    {
        var s = new TitansMlpShape(1, 1, 5, 2, 3, 2);
        var a = RecurrentData.Titans(new(1, 1, 5, 2, 2), 5);
        var init = new float[s.StateLength];
        var y = new float[s.ValueLength];
        AssertBad("key", "expected 10 = batch 1 x heads 1 x length 5 x keyDim 2", y, () =>
            TitansMlpMemory.Forward(Host, s, a.Query, a.Key[1..], a.Value, a.Theta, a.Eta,
                a.Alpha, y, 2, init));
        var badInit = (float[])init.Clone();
        badInit[3] = float.NaN;
        AssertBad("initialState", "expected finite", y, () =>
            TitansMlpMemory.Forward(Host, s, a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha,
                y, 2, badInit));
        AssertBad("shape", "HiddenDim must be positive", y, () =>
            TitansMlpMemory.Forward(Host, s with { HiddenDim = 0 }, a.Query, a.Key, a.Value,
                a.Theta, a.Eta, a.Alpha, y, 2, init));

        var m = new TitansMagShape(1, 1, 5, 3, 2, 2, 1, 2);
        var q = new float[15];
        AssertBad("query", "expected 15 = batch 1 x heads 1 x length 5 x headDim 3", y, () =>
            TitansGatedAttention.Forward(Host, m, q[1..], q, a.Value, a.Query, a.Key, a.Value,
                a.Theta, a.Eta, a.Alpha, y, 2));
        AssertBad("shape", "PersistentTokens is 6; expected 0..Length 5", y, () =>
            TitansGatedAttention.Forward(Host, m with { PersistentTokens = 6 }, q, q, a.Value,
                a.Query, a.Key, a.Value, a.Theta, a.Eta, a.Alpha, y, 2));
        AssertBad("shape", "Window must be positive", y, () =>
            TitansGatedAttention.Forward(Host, m with { Window = 0 }, q, q, a.Value, a.Query,
                a.Key, a.Value, a.Theta, a.Eta, a.Alpha, y, 2));
        AssertBad("memoryChunk", "memoryChunk must be positive", y, () =>
            TitansGatedAttention.Forward(Host, m, q, q, a.Value, a.Query, a.Key, a.Value,
                a.Theta, a.Eta, a.Alpha, y, 0));
        AssertBad("memoryKey", "expected 10 = batch 1 x heads 1 x length 5 x keyDim 2", y,
            () => TitansGatedAttention.Forward(Host, m, q, q, a.Value, a.Query, a.Key[1..],
                a.Value, a.Theta, a.Eta, a.Alpha, y, 2));
        AssertBad("theta", "expected 5 = batch 1 x heads 1 x length 5", y, () =>
            TitansGatedAttention.Forward(Host, m, q, q, a.Value, a.Query, a.Key, a.Value,
                a.Theta[1..], a.Eta, a.Alpha, y, 2));
    }
}
