using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Cli;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Cli;
using Xunit;

namespace Managed.Tests.Registry;

/// <summary>
/// <see cref="VariantSpec"/>: a spec binds to the very variant it replaced (same closed type,
/// same operator structs, same output on the host), its name parses back to it, bad numbers
/// are refused by the factories and bad text by the front end's parser.
/// </summary>
public sealed class VariantSpecTests
{
    /// <summary>The hand-written variants the specs replaced: the registry's (ALiBi at 8
    /// heads) and `bench --variants`' (ALiBi at the bench's heads, here 4; old names there
    /// were "sliding-512", "sinks4-window512", "document1000-causal", "softcap30-causal").
    /// </summary>
    private static readonly IAttentionVariant[] RegistryReplaced =
    [
        new AttentionVariant<NoScore, NoMask>("full", default, default),
        new AttentionVariant<NoScore, CausalMask>("causal", default, default),
        new AttentionVariant<AlibiScore, NoMask>("alibi", new(8), default),
        new AttentionVariant<AlibiScore, CausalMask>("alibi-causal", new(8), default),
        new AttentionVariant<SoftcapScore, NoMask>("softcap-30", new(30f), default),
        new AttentionVariant<SoftcapScore, CausalMask>("softcap-30-causal", new(30f), default),
        new AttentionVariant<NoScore, SlidingWindowMask>("window-l16-r8", default, new(16, 8)),
        new AttentionVariant<NoScore, SlidingWindowMask>("causal-window-32", default,
            SlidingWindowMask.Causal(32)),
        new AttentionVariant<NoScore, SinkWindowMask>("sink4-window32", default, new(4, 32)),
        new AttentionVariant<NoScore, PrefixLmMask>("prefix-lm-24", default, new(24)),
        new AttentionVariant<NoScore, And<CausalMask, FixedDocumentMask>>("doc-50-causal",
            default, new(default, new(50))),
        new AttentionVariant<TemperatureScore, NoMask>("temperature-0.5", new(0.5f), default),
        new AttentionVariant<NoScore, NoMask, SigmoidNormalizer>("sigmoid-b-4", default,
            default, new(-4f)),
        new AttentionVariant<NoScore, CausalMask, SigmoidNormalizer>("sigmoid-b-2-causal",
            default, default, new(-2f)),
        new AttentionVariant<NoScore, CausalMask, SoftplusNormalizer>("softplus-lssa16-causal",
            default, default, new(16)),
        new AttentionVariant<NoScore, NoMask, SoftplusNormalizer>("softplus-lssa16-p2",
            default, default, new(16, 2f)),
        new AttentionVariant<NoScore, NoMask, ClippedSoftmaxNormalizer>("clipped-1-0.01",
            default, default, new(1f, -0.01f)),
        new AttentionVariant<NoScore, CausalMask, ClippedSoftmaxNormalizer>(
            "clipped-1.5-0.05-causal", default, default, new(1.5f, -0.05f)),
    ];

    private const int BenchHeads = 4;

    private static readonly IAttentionVariant[] BenchReplaced =
    [
        new AttentionVariant<NoScore, CausalMask>("causal", default, default),
        new AttentionVariant<NoScore, SlidingWindowMask>("causal-window-512", default,
            SlidingWindowMask.Causal(512)),
        new AttentionVariant<NoScore, SinkWindowMask>("sink4-window512", default, new(4, 512)),
        new AttentionVariant<NoScore, And<CausalMask, FixedDocumentMask>>("doc-1000-causal",
            default, new(default, new(1000))),
        new AttentionVariant<SoftcapScore, CausalMask>("softcap-30-causal", new(30f), default),
        new AttentionVariant<AlibiScore, CausalMask>("alibi-causal", new(BenchHeads), default),
    ];

    /// <summary>Every registry spec, bound as the registry binds it, is the hand-written
    /// variant it replaced, and the registry lists it under the old name.</summary>
    [Fact]
    public void RegistrySpecsAreTheVariantsTheyReplaced()
    {
        Assert.Equal(RegistryReplaced.Length, VariantRegistry.Specs.Count);
        for (int i = 0; i < RegistryReplaced.Length; i++)
        {
            var expected = RegistryReplaced[i];
            Assert.Equal(expected.Name, VariantRegistry.Specs[i].Name);
            var registered = Assert.Single(VariantRegistry.All, v => v.Name == expected.Name);
            AssertSameVariant(expected, registered);
            AssertSameVariant(expected, VariantRegistry.Specs[i].Bind(8));
        }
    }

    /// <summary>`bench --variants` times the same variants as its hand-written list did, under
    /// the canonical names.</summary>
    [Fact]
    public void BenchSpecsAreTheVariantsTheyReplaced()
    {
        var bound = VariantBench.For(BenchHeads, 4096);
        Assert.Equal(BenchReplaced.Length, bound.Count);
        for (int i = 0; i < bound.Count; i++) AssertSameVariant(BenchReplaced[i], bound[i]);
    }

    /// <summary>ALiBi without heads takes the bind's; with heads keeps its own.</summary>
    [Fact]
    public void AlibiHeadsComeFromTheBindUnlessGiven()
    {
        var fromShape = new VariantSpec(MaskSpec.Causal, ScoreSpec.Alibi());
        var given = new VariantSpec(MaskSpec.Causal, ScoreSpec.Alibi(12));
        AssertSameVariant(new AttentionVariant<AlibiScore, CausalMask>("alibi-causal", new(3),
            default), fromShape.Bind(3));
        AssertSameVariant(new AttentionVariant<AlibiScore, CausalMask>("alibi-h12-causal",
            new(12), default), given.Bind(3));
    }

    /// <summary>Parse(spec.Name) == spec, and the bound variant carries the name, for
    /// generated specs of every kind.</summary>
    [Property(MaxTest = 500)]
    public Property NameParsesBackToTheSpec() =>
        Prop.ForAll(Specs.ToArbitrary(), spec =>
        {
            var parsed = VariantSpecParser.Parse("--variant", spec.Name);
            Assert.True(parsed == spec, $"'{spec.Name}' parsed to '{parsed.Name}' ({parsed})");
            Assert.Equal(spec.Name, spec.Bind(5).Name);
        });

    /// <summary>The documented spellings of sinks + window.</summary>
    [Theory]
    [InlineData("sinks4+window256")]
    [InlineData("sink4-window256")]
    [InlineData("sinks4-window256")]
    [InlineData("sink4+window256")]
    public void SinkWindowSpellings(string text) =>
        Assert.Equal(new VariantSpec(MaskSpec.SinkWindow(4, 256)),
            VariantSpecParser.Parse("--variant", text));

    /// <summary>Every factory refuses a number out of its range with an
    /// <see cref="ArgumentException"/> naming the part and the number.</summary>
    [Theory]
    [MemberData(nameof(InvalidNumbers))]
    public void InvalidNumbersAreRejected(string case_, string named)
    {
        var e = Assert.ThrowsAny<ArgumentException>(MakeInvalid[case_]);
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> InvalidNumbers()
    {
        var data = new TheoryData<string, string>();
        foreach (var (name, named) in InvalidNamed) data.Add(name, named);
        return data;
    }

    private static readonly (string Case, string Named)[] InvalidNamed =
    [
        ("window-l-1", "left"), ("window-r-1", "right"), ("causal-window-0", "window"),
        ("sink-1", "sinks"), ("sink-window-0", "window"), ("prefix-1", "prefix"),
        ("doc-0", "length"), ("alibi-h0", "heads"), ("softcap-0", "cap"),
        ("softcap-nan", "cap"), ("softcap-epsilon", "cap"), ("temperature--1", "temperature"),
        ("sigmoid-inf", "bias"), ("softplus-1", "training length"), ("softplus-p0.5", "power"),
        ("clipped-zeta0.5", "zeta"), ("clipped-gamma0.1", "gamma"), ("bind-0", "heads"),
    ];

    private static readonly Dictionary<string, Action> MakeInvalid = new()
    {
        ["window-l-1"] = () => MaskSpec.SlidingWindow(-1, 0),
        ["window-r-1"] = () => MaskSpec.SlidingWindow(0, -1),
        ["causal-window-0"] = () => MaskSpec.CausalWindow(0),
        ["sink-1"] = () => MaskSpec.SinkWindow(-1, 4),
        ["sink-window-0"] = () => MaskSpec.SinkWindow(4, 0),
        ["prefix-1"] = () => MaskSpec.PrefixLm(-1),
        ["doc-0"] = () => MaskSpec.CausalDocuments(0),
        ["alibi-h0"] = () => ScoreSpec.Alibi(0),
        ["softcap-0"] = () => ScoreSpec.Softcap(0f),
        ["softcap-nan"] = () => ScoreSpec.Softcap(float.NaN),
        ["softcap-epsilon"] = () => ScoreSpec.Softcap(float.Epsilon),
        ["temperature--1"] = () => ScoreSpec.FixedTemperature(-1f),
        ["sigmoid-inf"] = () => NormalizerSpec.Sigmoid(float.PositiveInfinity),
        ["softplus-1"] = () => NormalizerSpec.Softplus(1),
        ["softplus-p0.5"] = () => NormalizerSpec.Softplus(16, 0.5f),
        ["clipped-zeta0.5"] = () => NormalizerSpec.ClippedSoftmax(0.5f, 0f),
        ["clipped-gamma0.1"] = () => NormalizerSpec.ClippedSoftmax(1f, 0.1f),
        ["bind-0"] = () => new VariantSpec(MaskSpec.Causal).Bind(0),
    };

    /// <summary>Bad text for --variant is a usage error naming the option's text and what is
    /// wrong.</summary>
    [Theory]
    [InlineData("causl", "causl", "not a variant")]
    [InlineData("alibicausal", "alibicausal", "separator")]
    [InlineData("softcap-x-causal", "the cap", "not a finite number")]
    [InlineData("sink4-window0", "sink4-window0", "window must be >= 1")]
    [InlineData("sink4", "sink4", "window")]
    [InlineData("causal,", "''", "empty")]
    [InlineData("clipped-0.5-0.1", "clipped-0.5-0.1", "zeta")]
    [InlineData("causal-extra", "causal-extra", "unexpected text at '-extra'")]
    [InlineData("doc-50", "doc-50", "'-causal'")]
    [InlineData("alibi-", "alibi-", "nothing after the separator")]
    public void BadVariantTextIsAUsageError(string text, string named, string what)
    {
        var (exit, stdout, stderr) = Run("bench", "--variant", text);
        CliAssert.UsageError(exit, stdout, stderr, ["--variant", named, what]);
    }

    /// <summary>--variant with --variants or --reference is refused, not dropped.</summary>
    [Theory]
    [InlineData("--variants")]
    [InlineData("--reference")]
    public void BenchVariantWithATableFlagIsAUsageError(string flag)
    {
        var (exit, stdout, stderr) = Run("bench", "--variant", "causal", flag);
        CliAssert.UsageError(exit, stdout, stderr, ["--variant", flag]);
    }

    /// <summary>`bench --variant` times dense causal, then the specs given (repeated and
    /// comma-separated), on the host.</summary>
    [Fact]
    public void BenchVariantTimesTheSpecsAfterDenseCausal()
    {
        var (exit, stdout, stderr) = Run("bench", "--variant", "sinks2+window16,alibi-causal",
            "--variant", "sigmoid-b-2-causal", "--seq", "64", "--dim", "16", "--heads", "2",
            "--device", "cpu");
        Assert.Equal("", stderr);
        Assert.Equal(0, exit);
        var names = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(2)
            .Select(line => line.Split(' ')[0]).ToArray();
        Assert.Equal(["causal", "sink2-window16", "alibi-causal", "sigmoid-b-2-causal"], names);
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = CliApp.Run(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Same name, same closed type, equal operator structs, and the same output and
    /// log-sum-exp on a small host case.</summary>
    private static void AssertSameVariant(IAttentionVariant expected, IAttentionVariant actual)
    {
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.GetType(), actual.GetType());
        var (e, a) = (new Recorder(), new Recorder());
        expected.Accept(e);
        actual.Accept(a);
        Assert.Equal(e.Operators, a.Operators);
        var shape = AttentionShape.Self(1, 2, 70, 16);
        var rng = new Random(7);
        float[] Fill(long n) => Enumerable.Range(0, (int)n)
            .Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] q = Fill(shape.QueryLength), k = Fill(shape.KeyLength), v = Fill(shape.ValueLength);
        var (oe, oa) = (new float[shape.OutputLength], new float[shape.OutputLength]);
        var (le, la) = (new float[shape.Batch * shape.Heads * shape.SeqQ],
            new float[shape.Batch * shape.Heads * shape.SeqQ]);
        expected.Forward(ComputeDevice.Host, shape, q, k, v, oe, le);
        actual.Forward(ComputeDevice.Host, shape, q, k, v, oa, la);
        Assert.Equal(oe, oa);
        Assert.Equal(le, la);
    }

    private sealed class Recorder : IVariantVisitor
    {
        public (object Score, object Mask, object Norm) Operators { get; private set; }

        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier
            where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer => Operators = (score, mask, norm);
    }

    // Floats from nice decimals, raw bit patterns (tiny, huge, many digits) and edge values.
    private static Gen<float> Floats { get; } = Gen.OneOf(
        Gen.Choose(-4000, 4000).Select(i => i / 100f),
        Gen.Choose(int.MinValue, int.MaxValue).Select(BitConverter.Int32BitsToSingle),
        Gen.Elements(0f, -0f, 1f, float.Epsilon, float.MaxValue, -float.MaxValue, 1e-5f, 3e20f));

    private static Gen<float> FloatsWhere(Func<float, bool> valid) => Floats.Where(valid);

    private static Gen<int> Sizes { get; } =
        Gen.OneOf(Gen.Choose(0, 70), Gen.Choose(0, int.MaxValue), Gen.Constant(int.MaxValue));

    private static Gen<MaskSpec> Masks { get; } = Gen.OneOf(
        Gen.Constant(MaskSpec.None), Gen.Constant(MaskSpec.Causal),
        from l in Sizes from r in Sizes select MaskSpec.SlidingWindow(l, r),
        Sizes.Where(w => w >= 1).Select(MaskSpec.CausalWindow),
        from s in Sizes from w in Sizes.Where(w => w >= 1) select MaskSpec.SinkWindow(s, w),
        Sizes.Select(MaskSpec.PrefixLm),
        Sizes.Where(n => n >= 1).Select(MaskSpec.CausalDocuments));

    private static bool PositiveInvertible(float x) =>
        x > 0f && float.IsFinite(x) && float.IsFinite(1f / x);

    private static Gen<ScoreSpec> Scores { get; } = Gen.OneOf(
        Gen.Constant(ScoreSpec.None), Gen.Constant(ScoreSpec.Alibi()),
        Sizes.Where(h => h >= 1).Select(ScoreSpec.Alibi),
        FloatsWhere(PositiveInvertible).Select(ScoreSpec.Softcap),
        FloatsWhere(PositiveInvertible).Select(ScoreSpec.FixedTemperature));

    private static Gen<NormalizerSpec> Normalizers { get; } = Gen.OneOf(
        Gen.Constant(NormalizerSpec.Softmax),
        FloatsWhere(float.IsFinite).Select(NormalizerSpec.Sigmoid),
        from n in Sizes.Where(n => n >= 2)
        from p in Gen.OneOf(Gen.Constant(1f), FloatsWhere(p => p >= 1f && float.IsFinite(p)))
        select NormalizerSpec.Softplus(n, p),
        from z in FloatsWhere(z => z >= 1f && float.IsFinite(z))
        from g in FloatsWhere(g => g <= 0f && float.IsFinite(g))
        select NormalizerSpec.ClippedSoftmax(z, g));

    private static Gen<VariantSpec> Specs { get; } =
        from m in Masks from s in Scores from n in Normalizers select new VariantSpec(m, s, n);
}
