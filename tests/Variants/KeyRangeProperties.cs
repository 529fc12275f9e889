using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.Variants;

/// <summary>
/// KeyStart / KeyEnd bound the key tiles a kernel visits at all, so they must be sound: every
/// key that any query position of [q0, q1) may attend lies in [KeyStart, KeyEnd). Checked for
/// every registry mask, bound for a shape (table masks make their tables per shape), over
/// random query ranges, including negative positions and positions past the keys.
/// </summary>
public sealed class KeyRangeProperties
{
    private static readonly AttentionShape Shape = new(2, 8, 2, 300, 300, 64, 64);

    private static Arbitrary<(int Variant, int Batch, int Head, int Q0, int Rows)> Cases { get; } =
        (from variant in Gen.Choose(0, VariantRegistry.All.Count - 1)
         from batch in Gen.Choose(0, Shape.Batch - 1)
         from head in Gen.Choose(0, Shape.Heads - 1)
         from q0 in Gen.Choose(-80, Shape.SeqK + 20)
         from rows in Gen.Frequency((1, Gen.Elements(1, 16, 32, 64)), (2, Gen.Choose(1, 80)))
         select (variant, batch, head, q0, rows))
        .ToArbitrary();

    [Property(MaxTest = 1000)]
    public Property EveryAllowedKeyIsInTheRange() =>
        Prop.ForAll(Cases, c =>
        {
            var probe = new Probe(c.Batch, c.Head, c.Q0, c.Q0 + c.Rows);
            VariantRegistry.All[c.Variant].ForHost(Shape).Accept(probe);
        });

    /// <summary>Causal, window and fixed documents give tight ranges: the first and last
    /// allowed keys of the range are its bounds (a loose bound would visit needless tiles).</summary>
    [Property(MaxTest = 300)]
    public Property BandMasksAreTight() =>
        Prop.ForAll(Cases, c =>
        {
            int q0 = Math.Max(0, c.Q0), q1 = q0 + c.Rows;
            AssertTight(default(CausalMask), q0, q1, 0, q1);
            AssertTight(SlidingWindowMask.Causal(40), q0, q1, Math.Max(0, q0 - 39), q1);
            AssertTight(new FixedDocumentMask(50), q0, q1, q0 / 50 * 50, ((q1 - 1) / 50 + 1) * 50);
        });

    /// <summary>A mask that declares its rows intervals must mean it: Allows(q, k) iff k lies in
    /// the single-row range [KeyStart(q, q + 1), KeyEnd(q, q + 1)), for every key 0 &lt;= k &lt; seqK (kernels then
    /// test partial tiles against those bounds only).</summary>
    [Property(MaxTest = 1000)]
    public Property IntervalRowsAreExact() =>
        Prop.ForAll(Cases, c =>
        {
            var probe = new IntervalProbe(c.Batch, c.Head, c.Q0, c.Q0 + c.Rows);
            VariantRegistry.All[c.Variant].ForHost(Shape).Accept(probe);
        });

    /// <summary>The registry's plain, causal, window, prefix and document masks (and their
    /// conjunctions) are the ones declared intervals; a mask that is not must not claim it.</summary>
    [Fact]
    public void IntervalDeclarations()
    {
        Assert.True(CausalMask.RowIsInterval);
        Assert.True(NoMask.RowIsInterval);
        Assert.True(SlidingWindowMask.RowIsInterval);
        Assert.True(PrefixLmMask.RowIsInterval);
        Assert.True(And<FixedDocumentMask, CausalMask>.RowIsInterval);
        Assert.False(Declared<SinkWindowMask>());
        Assert.False(Declared<Or<PrefixLmMask, SlidingWindowMask>>());
        Assert.False(Declared<And<CausalMask, SinkWindowMask>>());
        Assert.False(Declared<Not<CausalMask>>());
    }

    private static bool Declared<TMask>() where TMask : struct, IMaskPredicate => TMask.RowIsInterval;

    private sealed class IntervalProbe(int batch, int head, int q0, int q1) : IVariantVisitor
    {
        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer
        {
            if (!TMask.RowIsInterval) return;
            for (int q = q0; q < q1; q++)
            {
                int start = mask.KeyStart(batch, head, q, q + 1), end = mask.KeyEnd(batch, head, q, q + 1);
                for (int k = 0; k < Shape.SeqK; k++)
                    if (mask.Allows(batch, head, q, k) != (k >= start && k < end))
                        throw new XunitException(
                            $"{name}: b={batch} h={head} q={q} k={k}: Allows={mask.Allows(batch, head, q, k)} but the row interval is [{start}, {end}).");
            }
        }
    }

    private static void AssertTight<TMask>(TMask mask, int q0, int q1, int start, int end)
        where TMask : struct, IMaskPredicate
    {
        Assert.Equal(start, Math.Max(0, mask.KeyStart(0, 0, q0, q1)));
        Assert.Equal(end, mask.KeyEnd(0, 0, q0, q1));
    }

    private sealed class Probe(int batch, int head, int q0, int q1) : IVariantVisitor
    {
        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer
        {
            int start = mask.KeyStart(batch, head, q0, q1), end = mask.KeyEnd(batch, head, q0, q1);
            for (int q = q0; q < q1; q++)
                for (int k = 0; k < Shape.SeqK; k++)
                    if (mask.Allows(batch, head, q, k) && (k < start || k >= end))
                        throw new XunitException(
                            $"{name}: b={batch} h={head} q={q} allows k={k}, outside [{start}, {end}) of q=[{q0},{q1}).");
        }
    }
}
