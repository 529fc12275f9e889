using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.TaylorMechanisms;

/// <summary>One random problem: raw sizes (GQA included), a chunk size and a data seed.
/// </summary>
public sealed record TaylorCase(AttentionShape Shape, int? Chunk, int Seed)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"{Shape} chunk={Chunk?.ToString() ?? "default"} seed={Seed}";
}

/// <summary>
/// FsCheck properties on the host: on random small shapes (N &lt;= 40, d &lt;= 6, B H &lt;= 4)
/// BASED's linear mixer equals its naive quadratic form, its window mixer the windowed
/// softmax, and Fastmax (both orders, causal and not) its explicit O(N^2) evaluation.
/// Failures replay from FsCheck's seed.
/// </summary>
public sealed class TaylorMechanismProperties
{
    private static Gen<TaylorCase> Cases { get; } =
        from batch in Gen.Choose(1, 2)
        from heads in Gen.Elements((1, 1), (2, 1), (2, 2))
        from n in Gen.Choose(1, 40)
        from d in Gen.Choose(1, 6)
        from dv in Gen.Choose(1, 6)
        from chunk in Gen.Elements<int?>(1, 2, 5, 16, 64, null)
        from seed in Gen.Choose(0, 1 << 20)
        select new TaylorCase(new AttentionShape(batch, heads.Item1, heads.Item2, n, n, d, dv),
            chunk, seed);

    private static ComputeDevice Host => ComputeDevice.Host;

    /// <summary>BASED linear == naive quadratic form of 1 + s + s^2 / 2.</summary>
    [Property(MaxTest = 40)]
    public Property BasedLinearMatchesNaiveForm() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var s = c.Shape;
            var (q, k, v) = TaylorMechanismTests.Inputs(s, c.Seed, 1f);
            var o = new float[s.OutputLength];
            BasedAttention.Linear(Host, TaylorMechanismTests.Mapped(s,
                BasedAttention.Features(s.HeadDim)), s.HeadDim, q, k, v, o, chunkSize: c.Chunk);
            AssertClose(o, ReferenceBased.Linear(s, ToDouble(q), ToDouble(k), ToDouble(v)),
                5e-5, 5e-4, c.ToString());
        });

    /// <summary>BASED window (a window drawn from the chunk field, 1..64) == windowed softmax.
    /// </summary>
    [Property(MaxTest = 40)]
    public Property BasedWindowMatchesWindowedSoftmax() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var s = c.Shape;
            int window = c.Chunk ?? s.SeqQ;
            var (q, k, v) = TaylorMechanismTests.Inputs(s, c.Seed, 1f);
            var o = new float[s.OutputLength];
            BasedAttention.Window(Host, s, window, q, k, v, o);
            AssertClose(o, ReferenceBased.Window(s, window, ToDouble(q), ToDouble(k),
                ToDouble(v)), 5e-5, 5e-4, $"{c} window {window}");
        });

    /// <summary>Fastmax == its explicit evaluation, orders 1 and 2, causal and not.</summary>
    [Property(MaxTest = 40)]
    public Property CenteredPolynomialMatchesExplicitEvaluation() =>
        Prop.ForAll(Cases.ToArbitrary(), Gen.Elements(1, 2).ToArbitrary(),
            Gen.Elements(false, true).ToArbitrary(), (c, order, causal) =>
        {
            // Order 1 at d = 2: every centered row is +-(1, -1) / sqrt(2), so each weight
            // 1 + s is exactly 0 or 2 and a row may sum to 0 (its output then hangs on
            // rounding, in fp64 as in float): ill-conditioned by definition, so d >= 3 there.
            var s = order == 1 && c.Shape.HeadDim == 2 ? c.Shape with { HeadDim = 3 } : c.Shape;
            var (q, k, v) = TaylorMechanismTests.Inputs(s, c.Seed, 1f);
            var o = new float[s.OutputLength];
            CenteredPolynomialAttention.Forward(Host, TaylorMechanismTests.Mapped(s,
                CenteredPolynomialAttention.Features(s.HeadDim, order)), s.HeadDim, order, q, k, v, o,
                causal, chunkSize: c.Chunk);
            AssertClose(o, ReferenceCenteredPolynomial.Attention(s, order, ToDouble(q), ToDouble(k),
                ToDouble(v), causal), 5e-5, 5e-4, $"{c} order {order} causal {causal}");
        });
}
