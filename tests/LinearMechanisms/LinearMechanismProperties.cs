using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using static Managed.Kernels.Reference.ReferenceLinearMechanisms;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.LinearMechanisms;

/// <summary>One random problem of the mechanisms: a shape (GQA included), a chunk size for
/// Lightning and a data seed.</summary>
public sealed record MechanismCase(LinearAttentionShape Shape, int? Chunk, int Seed)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"{Shape} chunk={Chunk?.ToString() ?? "default"} seed={Seed}";
}

/// <summary>
/// FsCheck properties on the host: on random tiny shapes (N &lt;= 40, dims &lt;= 8, B H &lt;= 4)
/// Lightning, InLine and Flow equal their fp64 materialized references. Failures replay from
/// FsCheck's seed.
/// </summary>
public sealed class LinearMechanismProperties
{
    private static Gen<MechanismCase> Cases { get; } =
        from batch in Gen.Choose(1, 2)
        from heads in Gen.Elements((1, 1), (2, 1), (2, 2))
        from n in Gen.Choose(1, 40)
        from f in Gen.Choose(1, 8)
        from dv in Gen.Choose(1, 8)
        from chunk in Gen.Elements<int?>(1, 2, 5, 16, null)
        from seed in Gen.Choose(0, 1 << 20)
        select new MechanismCase(new LinearAttentionShape(batch, heads.Item1, heads.Item2, n, f,
            dv), chunk, seed);

    private static ComputeDevice Host => ComputeDevice.Host;

    /// <summary>Lightning equals the naive decayed form.</summary>
    [Property(MaxTest = 60)]
    public Property LightningMatchesNaiveForm() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var s = c.Shape;
            var (q, k, v) = LinearMechanismTests.Inputs(s, c.Seed, s.Features, 0.5f);
            var decay = LightningAttention.Decays(s.KvHeads);
            var output = new float[s.OutputLength];
            LightningAttention.Forward(Host, s, q, k, v, decay, output, chunkSize: c.Chunk);
            AssertClose(output, Lightning(s, ToDouble(q), ToDouble(k), ToDouble(v), decay),
                5e-5, 5e-4, c.ToString());
        });

    /// <summary>InLine equals the materialized subtractive weights.</summary>
    [Property(MaxTest = 60)]
    public Property InLineMatchesMaterializedWeights() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var s = c.Shape;
            var (q, k, v) = LinearMechanismTests.Inputs(s, c.Seed, s.Features, 0.4f);
            var output = new float[s.OutputLength];
            InLineAttention.Forward(Host, s, q, k, v, output);
            AssertClose(output, InLine(s, ToDouble(q), ToDouble(k), ToDouble(v)), 5e-5, 5e-4,
                c.ToString());
        });

    /// <summary>Flow equals the materialized flow network (heads = kvHeads).</summary>
    [Property(MaxTest = 60)]
    public Property FlowMatchesMaterializedNetwork() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var s = c.Shape with { KvHeads = c.Shape.Heads };
            var (q, k, v) = LinearMechanismTests.Inputs(s, c.Seed, s.Features, 1f);
            var output = new float[s.OutputLength];
            FlowAttention.Forward(Host, s, q, k, v, output);
            AssertClose(output, Flow(s, ToDouble(q), ToDouble(k), ToDouble(v)).Output, 5e-5,
                5e-4, c.ToString());
        });
}
