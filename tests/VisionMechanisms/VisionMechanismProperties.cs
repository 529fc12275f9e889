using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using static Managed.Tests.Mechanisms.MechanismData;

namespace Managed.Tests.VisionMechanisms;

/// <summary>One random problem of the vision mechanisms: a shape over a height x width grid
/// after <paramref name="Prefix"/> class tokens (GQA included), a kernel size and a data seed.
/// </summary>
public sealed record VisionCase(LinearAttentionShape Shape, int Height, int Width, int Prefix,
    int Kernel, int Seed)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"{Shape} grid {Height}x{Width} prefix {Prefix} k {Kernel} seed={Seed}";
}

/// <summary>
/// FsCheck properties on the host: on random tiny shapes (N &lt;= 38, dims &lt;= 8, B H &lt;= 4)
/// MALA, RALA, L2ViT's global mixer with its LCM and InLine with its local term equal their
/// fp64 references. Failures replay from FsCheck's seed.
/// </summary>
public sealed class VisionMechanismProperties
{
    private static Gen<VisionCase> Cases { get; } =
        from batch in Gen.Choose(1, 2)
        from heads in Gen.Elements((1, 1), (2, 1), (2, 2))
        from height in Gen.Choose(1, 6)
        from width in Gen.Choose(1, 6)
        from prefix in Gen.Choose(0, 2)
        from f in Gen.Choose(1, 8)
        from dv in Gen.Choose(1, 8)
        from kernel in Gen.Elements(1, 3, 5)
        from seed in Gen.Choose(0, 1 << 20)
        select new VisionCase(new LinearAttentionShape(batch, heads.Item1, heads.Item2,
            prefix + height * width, f, dv), height, width, prefix, kernel, seed);

    private static ComputeDevice Host => ComputeDevice.Host;

    /// <summary>MALA equals its materialized weights.</summary>
    [Property(MaxTest = 60)]
    public Property MalaMatchesMaterialized() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var s = c.Shape;
            float[] q = VisionMechanismTests.Positive(c.Seed, s.QueryLength),
                k = VisionMechanismTests.Positive(c.Seed + 1, s.KeyLength),
                v = Uniform(c.Seed + 2, s.ValueLength);
            var o = new float[s.OutputLength];
            MalaAttention.Forward(Host, s, q, k, v, o);
            AssertClose(o, ReferenceMala.Forward(s, ToDouble(q), ToDouble(k), ToDouble(v)),
                5e-5, 5e-4, c.ToString());
        });

    /// <summary>RALA equals its materialized weights times the gate.</summary>
    [Property(MaxTest = 60)]
    public Property RalaMatchesMaterialized() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var s = c.Shape;
            float[] q = VisionMechanismTests.Positive(c.Seed, s.QueryLength),
                k = VisionMechanismTests.Positive(c.Seed + 1, s.KeyLength),
                v = Uniform(c.Seed + 2, s.ValueLength), g = Uniform(c.Seed + 3, s.OutputLength);
            var o = new float[s.OutputLength];
            RalaAttention.Forward(Host, s, q, k, v, g, o);
            AssertClose(o, ReferenceRala.Forward(s, ToDouble(q), ToDouble(k), ToDouble(v),
                ToDouble(g), 1 / Math.Sqrt(s.Features)), 5e-5, 5e-4, c.ToString());
        });

    /// <summary>L2ViT's global mixer plus its LCM equals the fp64 composition (the grid covers
    /// the whole length: no prefix).</summary>
    [Property(MaxTest = 60)]
    public Property L2VitGlobalWithLcmMatchesReference() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var s = c.Shape with { Length = c.Height * c.Width };
            float[] q = Array.ConvertAll(Uniform(c.Seed, s.QueryLength, 3f), x => MathF.Max(x, 0)),
                k = Array.ConvertAll(Uniform(c.Seed + 1, s.KeyLength, 3f), x => MathF.Max(x, 0)),
                v = Uniform(c.Seed + 2, s.ValueLength), tau = Uniform(c.Seed + 3, s.Heads);
            int conv = s.Heads * s.ValueDim * c.Kernel * c.Kernel, ch = s.Heads * s.ValueDim;
            var lcm = new L2VitLcmWeights(c.Kernel, Uniform(c.Seed + 4, conv, 0.5f),
                Uniform(c.Seed + 5, ch, 0.5f), Uniform(c.Seed + 6, ch),
                Uniform(c.Seed + 7, ch, 0.5f), Uniform(c.Seed + 8, conv, 0.5f),
                Uniform(c.Seed + 9, ch, 0.5f));
            float floor = c.Seed % 2 == 0 ? 100f : 1e-3f;
            var o = new float[s.OutputLength];
            L2VitAttention.GlobalWithLcm(Host, s, c.Height, c.Width, q, k, v, tau, lcm, o,
                floor);
            var a = ReferenceL2Vit.Global(s, ToDouble(q), ToDouble(k), ToDouble(v),
                ToDouble(tau), floor);
            var local = ReferenceL2Vit.LocalConcentration(s.Batch, s.Heads, c.Height, c.Width,
                s.ValueDim, a, lcm);
            for (int e = 0; e < a.Length; e++) a[e] += local[e];
            AssertClose(o, a, 5e-5, 5e-4, c.ToString());
        });

    /// <summary>InLine with its local term equals the materialized weights plus the direct
    /// convolution.</summary>
    [Property(MaxTest = 60)]
    public Property InLineLocalMatchesReference() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
        {
            var s = c.Shape;
            var local = new InLineLocal(c.Height, c.Width, c.Kernel, c.Prefix);
            float[] q = Uniform(c.Seed, s.QueryLength, 0.4f),
                k = Uniform(c.Seed + 1, s.KeyLength, 0.4f), v = Uniform(c.Seed + 2, s.ValueLength);
            long channels = (long)s.Batch * s.KvHeads * s.ValueDim;
            float[] w = Uniform(c.Seed + 3, channels * c.Kernel * c.Kernel),
                bias = c.Seed % 2 == 0 ? Uniform(c.Seed + 4, channels) : [];
            var o = new float[s.OutputLength];
            InLineAttention.Forward(Host, s, local, q, k, v, w, bias, o);
            AssertClose(o, ReferenceInLineLocal.Forward(s, local, ToDouble(q), ToDouble(k),
                ToDouble(v), w, bias), 5e-5, 5e-4, c.ToString());
        });
}
