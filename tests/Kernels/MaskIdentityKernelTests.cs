using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>
/// The catalog identities run through the host kernel: a variant whose parameters make it
/// degenerate gives the output of the plain variant (window &gt;= N, factor 1, temperature 1,
/// all heads retrieval, kernel &gt;= 2N - 1, m or not m). Tile classes may differ between the
/// two runs, so outputs are compared with a tight tolerance rather than bit for bit.
/// </summary>
[Collection(HostBackendCollection.Name)]
public sealed class MaskIdentityKernelTests(HostBackendFixture fixture)
{
    private static readonly Tolerance Tight = new(1e-6, 1e-6);

    private TestDevice Backend => fixture.Backend;

    private static Arbitrary<AttentionCase> Cases { get; } = AttentionGen.Cases(CaseLimits.Host).ToArbitrary();

    [Property(MaxTest = 40)]
    public Property WindowCoveringEveryKeyIsExact() =>
        Prop.ForAll(Cases, c =>
        {
            int n = Math.Max(c.Shape.SeqQ, c.Shape.SeqK);
            AssertSame(c, default(NoScore), new SlidingWindowMask(n, n), default(NoScore), default(NoMask));
            AssertSame(c, default(NoScore), SlidingWindowMask.Causal(n + 1), default(NoScore), default(CausalMask));
            AssertSame(c, default(NoScore), new SinkWindowMask(2, n + 1), default(NoScore), default(CausalMask));
        });

    [Property(MaxTest = 30)]
    public Property AllRetrievalHeadsIsCausal() =>
        Prop.ForAll(Cases, c =>
            AssertSame(c, default(NoScore), new DuoAttentionMask(ulong.MaxValue, 4, 16), default(NoScore), default(CausalMask)));

    [Property(MaxTest = 30)]
    public Property NeutralModifiersAreExact() =>
        Prop.ForAll(Cases, c =>
        {
            AssertSame(c, new KeyReweightScore(0, 4, 1f), default(CausalMask), default(NoScore), default(CausalMask));
            AssertSame(c, new TemperatureScore(1f), default(NoMask), default(NoScore), default(NoMask));
            AssertSame(c, new LogPositionTemperatureScore(0f, 1f), default(NoMask), default(NoScore), default(NoMask));
        });

    /// <summary>1-D neighborhood over the whole sequence (seqQ = seqK = L &gt;= 2, K = L, the
    /// largest kernel NATTEN accepts) and its strided form: exact attention.</summary>
    [Property(MaxTest = 30)]
    public Property WideNeighborhoodIsExact() =>
        Prop.ForAll(Cases, c =>
        {
            int n = c.Shape.SeqK;
            if (n < 2) return; // NATTEN's kernels are >= 2 and <= L
            var square = c with { Shape = c.Shape with { SeqQ = n } };
            AssertSame(square, default(NoScore), new NeighborhoodMask1D(n, n), default(NoScore),
                default(NoMask));
            AssertSame(square, default(NoScore),
                new NeighborhoodMask1D(n, n, stride: Math.Min(5, n)),
                default(NoScore), default(NoMask));
        });

    [Property(MaxTest = 30)]
    public Property MaskOrItsComplementIsExact() =>
        Prop.ForAll(Cases, c =>
            AssertSame(c, default(NoScore),
                new Or<NeighborhoodMask2D, Not<NeighborhoodMask2D>>(new(new(8, 3), new(16, 5)), new(new(new(8, 3), new(16, 5)))),
                default(NoScore), default(NoMask)));

    private void AssertSame<TS1, TM1, TS2, TM2>(AttentionCase c, TS1 score, TM1 mask, TS2 plainScore, TM2 plainMask)
        where TS1 : struct, IScoreModifier where TM1 : struct, IMaskPredicate
        where TS2 : struct, IScoreModifier where TM2 : struct, IMaskPredicate
    {
        var a = AttentionRun.Run(Backend, c.Shape, c.Query, c.Key, c.Value, score, mask, c.Options);
        var b = AttentionRun.Run(Backend, c.Shape, c.Query, c.Key, c.Value, plainScore, plainMask, c.Options);
        var context = $"{typeof(TS1).Name}/{typeof(TM1).Name} vs {typeof(TS2).Name}/{typeof(TM2).Name}: {c}";
        Tight.AssertClose(a.Output, b.Output, "output", context);
        Tight.AssertClose(a.LogSumExp, b.LogSumExp, "log-sum-exp", context);
    }
}
