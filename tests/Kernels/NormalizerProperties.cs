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
using Xunit.Sdk;

namespace Managed.Tests.Kernels;

/// <summary>
/// The softmax replacements (<see cref="SigmoidNormalizer"/>, <see cref="SoftplusNormalizer"/>,
/// <see cref="ClippedSoftmaxNormalizer"/>) through a backend's kernels: each against its own
/// fp64 reference, the identities that pin each definition down independently of the
/// reference, and fully masked rows. Written once, as <see cref="AttentionPropertiesBase"/> is;
/// subclasses supply the backend and the shapes (the ILGPU subclasses pick the head dims that
/// select the register-tiled or the general kernel).
/// <para>
/// Tolerances. <see cref="Tolerance.Kernel"/> (atol 1e-5, rtol 1e-4) is the budget of a
/// softmax output: a convex combination of values in [-1, 1] whose weights carry the relative
/// error of the fp32 logit (a logit error delta moves ln w_j by delta, since d ln e^s / ds = 1).
/// A replacement gets the same budget per unit of that sensitivity, atol = 1e-5 f, where f is
/// what multiplies the logit error on the way to the output (<see cref="Replacement.Factor"/>):
/// sigmoid, not normalized: d ln sigma(s+b) / ds = 1 - sigma &lt;= 1 per weight, and
/// O = sum_j w_j v_j adds the weights' errors over the row's weight mass W = sum_j w_j, so
/// f = max(1, W) (fp32 accumulation of the N products is also relative to W);
/// softplus: d ln softplus(kappa s)^p / ds = p kappa sigma(x) / softplus(x) &lt;= p kappa and the
/// output is normalized, so f = p kappa_i; clipped softmax: |dw/dp| &lt;= zeta - gamma (the clip is
/// 1-Lipschitz) and sum_j p_j = 1, so f = zeta - gamma. rtol stays 1e-4.
/// </para>
/// </summary>
public abstract class NormalizerPropertiesBase
{
    /// <summary>fp32 unit roundoff, 2^-24.</summary>
    protected const double Unit = 5.960464477539063e-8;

    /// <summary>The backend under test.</summary>
    protected abstract TestDevice Backend { get; }

    /// <summary>Size limits of the generated cases.</summary>
    protected abstract CaseLimits Limits { get; }

    /// <summary>(headDim, valueDim) of the generated cases; the ILGPU subclasses restrict it to
    /// the range of one of the two kernels.</summary>
    protected abstract Gen<(int HeadDim, int ValueDim)> Dims { get; }

    /// <summary>
    /// Random cases: batch, GQA/MQA heads, seqQ and seqK independent (tile edges half of the
    /// time), both alignments. <see cref="AttentionCase.Variant"/> is not a registry index here:
    /// its low bit picks the mask (0: <see cref="NoMask"/>, 1: <see cref="CausalMask"/>) and
    /// the rest picks among the replacements where a property runs only some of them.
    /// </summary>
    protected Arbitrary<AttentionCase> Cases => CaseGen(Limits, Dims).ToArbitrary();

    /// <summary>Cases generated within <paramref name="limits"/> with dims from <paramref name="dims"/>.</summary>
    protected static Gen<AttentionCase> CaseGen(CaseLimits limits, Gen<(int HeadDim, int ValueDim)> dims) =>
        from batch in Gen.Choose(1, limits.MaxBatch)
        from kvHeads in Gen.Elements(HeadCounts(limits.MaxHeads))
        from groupSize in Gen.Elements(HeadCounts(limits.MaxHeads / kvHeads))
        from seqQ in AttentionGen.SeqLength(limits.MaxSeq)
        from seqK in AttentionGen.SeqLength(limits.MaxSeq)
        from d in dims
        from alignment in Gen.Elements(QueryAlignment.BottomRight, QueryAlignment.TopLeft)
        from selector in Gen.Choose(0, 1 << 20)
        from seed in AttentionGen.Seed
        select new AttentionCase(
            AttentionGen.Fit(new AttentionShape(batch, kvHeads * groupSize, kvHeads, seqQ, seqK,
                d.HeadDim, d.ValueDim), limits.Budget),
            alignment, selector, seed);

    /// <summary>(headDim, valueDim) from <paramref name="dims"/>: valueDim = headDim 3 times in 4.</summary>
    protected static Gen<(int HeadDim, int ValueDim)> DimsFrom(int[] dims) =>
        from d in Gen.Elements(dims)
        from dv in Gen.Frequency((3, Gen.Constant(d)), (1, Gen.Elements(dims)))
        select (d, dv);

    private static int[] HeadCounts(int max) => new[] { 1, 2, 4, 8 }.Where(h => h <= max).ToArray();

    /// <summary>
    /// Cases with bottom-right alignment and seqQ &gt; seqK, so under a causal mask the first
    /// seqQ - seqK rows (positions &lt; 0) see no key.
    /// </summary>
    protected Arbitrary<AttentionCase> MaskedRowCases =>
        (from c in CaseGen(Limits, Dims)
         from extra in Gen.Choose(1, Math.Max(1, Limits.MaxSeq / 2))
         let seqK = Math.Max(1, Math.Min(c.Shape.SeqK, Limits.MaxSeq - extra))
         let shape = AttentionGen.Fit(c.Shape with { SeqK = seqK, SeqQ = seqK + extra }, Limits.Budget)
         where shape.SeqQ > shape.SeqK
         select c with { Shape = shape, Alignment = QueryAlignment.BottomRight })
        .ToArbitrary();

    // ---------------------------------------------------------------------------------------
    // 1. Each replacement against its own fp64 reference.

    /// <summary>
    /// Every replacement (sigmoid with b = 0, -ln(seqK) as the paper recommends, and 2.5;
    /// softplus trained at 8 tokens, so kappa_i = ln(i + 1) / ln 8 &gt; 1 from position 8 on,
    /// with power 1 and 2; clipped softmax (1, -0.02) and (1.5, -0.05)) under the case's mask
    /// matches <see cref="ReferenceAttention"/> with the same normalizer. Outputs: per row,
    /// atol 1e-5 f + rtol 1e-4 with the replacement's sensitivity f (class summary). Weight
    /// sums: exp(log-sum-exp) = sum_j w_j against the reference's with
    /// <see cref="Tolerance.Kernel"/>, compared as sums rather than logs because clipped rows
    /// can have a sum near 0, where ln is ill-conditioned (the kernel may clip a weight the
    /// reference leaves at 1e-9 and report -infinity); the sum's relative error is that of the
    /// weights plus fp32 summation over at most N keys, N u &lt;= 1.2e-5 here, under rtol 1e-4.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property ReplacementsMatchTheirReference() =>
        Prop.ForAll(Cases, c =>
        {
            bool causal = IsCausal(c);
            foreach (var r in Selected(Replacements(c.Shape, causal), c))
                AssertMatchesReference(r, c, c.Options, c.Value);
        });

    /// <summary>How many of a property's normalizers (or parameter sets) one case runs: all
    /// on the host; the ILGPU subclasses run a subset that rotates with the case's selector,
    /// to bound the emulated launches while every normalizer still gets cases.</summary>
    protected virtual int NormalizersPerCase => int.MaxValue;

    /// <summary>The <see cref="NormalizersPerCase"/> items of <paramref name="all"/> that
    /// <paramref name="c"/> runs, starting at a position given by its selector.</summary>
    private IEnumerable<T> Selected<T>(IReadOnlyList<T> all, AttentionCase c)
    {
        int n = Math.Min(NormalizersPerCase, all.Count), start = c.Variant / 2 % all.Count;
        for (int i = 0; i < n; i++) yield return all[(start + i) % all.Count];
    }

    // ---------------------------------------------------------------------------------------
    // 2. Identities.

    /// <summary>
    /// Clipped softmax with zeta = 1, gamma = 0 is w_j = clip(p_j, 0, 1) = p_j: softmax
    /// attention, computed another way (two passes, exp(s - lse) with the fp32 log-sum-exp of
    /// pass 1, no division). It must equal the plain softmax call (the two-type-parameter
    /// entry point) with the same mask. Both runs share the logits and accumulate the same
    /// products in the same order; they differ by the rounding of the log-sum-exp L (relative
    /// u |L| on every weight of the row, |L| &lt;= |s|max + ln N), by two fp32 exps (the SIMD exp
    /// is within 2 ulps, MathF.Exp 1), by the softmax's per-tile rescaling (one rounding per key
    /// tile) and its division: in all about (|L| + 2 tiles + 8) u relative per weight; tolerance
    /// atol = 2 (|L| + 2 tiles + 8) u per row plus rtol 4u (about 1e-6 absolute, ten times
    /// tighter than the reference comparisons, which would hide a real difference).
    /// The log-sum-exp output is ln sum_j p_j, which is 0 up to the same relative error plus
    /// fp32 summation (N u): |lse| &lt;= 2 (|L| + N + 8) u; -infinity exactly where softmax's is.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property ClippedWithZetaOneGammaZeroIsSoftmax() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            bool causal = IsCausal(c);
            var clipped = RunNormalizer(c, c.Value, causal, new ClippedSoftmaxNormalizer(1f, 0f), c.Options);
            var softmax = causal
                ? AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore), default(CausalMask), c.Options)
                : AttentionRun.Run(Backend, s, c.Query, c.Key, c.Value, default(NoScore), default(NoMask), c.Options);
            int tiles = (s.SeqK + KeyTile(s) - 1) / KeyTile(s);
            var context = $"clipped(1, 0) vs softmax, causal={causal}: {c}";
            for (int row = 0; row < s.Batch * s.Heads * s.SeqQ; row++)
            {
                double lse = softmax.LogSumExp[row];
                if (float.IsNegativeInfinity(softmax.LogSumExp[row]))
                {
                    if (!float.IsNegativeInfinity(clipped.LogSumExp[row]))
                        throw new XunitException($"row {row}: clipped log-sum-exp {clipped.LogSumExp[row]}, softmax's is -inf. {context}");
                    lse = 0;
                }
                else
                {
                    double lseBound = 2 * (Math.Abs(lse) + s.SeqK + 8) * Unit;
                    if (!(Math.Abs(clipped.LogSumExp[row]) <= lseBound))
                        throw new XunitException(
                            $"row {row}: clipped log-sum-exp (ln sum p) {clipped.LogSumExp[row]:R}, expected 0 within {lseBound:g3}. {context}");
                }
                var tight = new Tolerance(2 * (Math.Abs(lse) + 2 * tiles + 8) * Unit, 4 * Unit);
                tight.AssertClose(Row(clipped.Output, row, s.ValueDim), Row(softmax.Output, row, s.ValueDim),
                    $"output row {row}", context);
            }
        });

    /// <summary>
    /// Softplus attention is l1-normalized: with V = 1 every output element of a row with an
    /// allowed key is sum_j w_j / sum_j w_j = 1 (any valueDim), for several training lengths
    /// and powers. The kernel forms the numerator (accumulated with V) and the denominator
    /// (the row sum) separately from the same N non-negative fp32 weights, so each carries a
    /// relative summation error of at most (N - 1) u and the quotient is 1 within
    /// (2N + 1) u (2.4e-5 for 200 keys); no reference is involved. A row with no allowed key
    /// is 0.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property SoftplusRowsSumToOne() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            bool causal = IsCausal(c);
            var ones = Ones(s.ValueLength);
            var tolerance = new Tolerance(0, (2 * s.SeqK + 1) * Unit);
            foreach (var (n, p) in Selected(new[] { (8, 1f), (8, 2f), (2, 1.5f), (1 << 30, 1f) }, c))
            {
                var result = RunNormalizer(c, ones, causal, new SoftplusNormalizer(n, p), c.Options);
                var context = $"softplus(n={n}, p={p}) V=1, causal={causal}: {c}";
                ForEachRow(s, c.Options, (row, pos) =>
                {
                    double expected = Allowed(causal, pos, s.SeqK) > 0 ? 1 : 0;
                    tolerance.AssertClose(Row(result.Output, row, s.ValueDim), Filled(s.ValueDim, expected),
                        $"output row {row} (position {pos})", context);
                });
            }
        });

    /// <summary>
    /// Softplus with power 1 and a training length (2^30) beyond every position has kappa = 1:
    /// plain softplus attention, sum_j softplus(s_j) v_j / sum_j softplus(s_j), against the
    /// reference with the same normalizer (whose kappa is then exactly 1). f = p kappa = 1, so
    /// the softmax budget applies unchanged: <see cref="Tolerance.Kernel"/> for outputs and
    /// weight sums. The logits are scaled by 3/sqrt(D) so softplus is not near-linear.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property SoftplusWithinTrainingLengthHasKappaOne() =>
        Prop.ForAll(Cases, c =>
        {
            bool causal = IsCausal(c);
            var options = c.Options with { Scale = 3f / MathF.Sqrt(c.Shape.HeadDim) };
            AssertMatchesReference(Softplus(1 << 30, 1f, causal), c, options, c.Value);
        });

    /// <summary>
    /// Sigmoid with V = 1 gives sum_j sigma(s_j + b) in every element of a row: the reference's
    /// output there (and its weight sum), compared with the sigmoid tolerance (atol
    /// 1e-5 max(1, W), rtol 1e-4). The kernel's own log-sum-exp must be the log of its own
    /// output: the same fp32 weights summed twice (relative (N - 1) u each) and the log rounded
    /// (u |lse| after exp), so relative (2N + 4 + |lse|) u.
    /// </summary>
    [Property(MaxTest = 60)]
    public Property SigmoidWithUnitValuesSumsTheSigmoids() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            bool causal = IsCausal(c);
            var ones = Ones(s.ValueLength);
            foreach (float bias in Selected(new[] { 0f, -3f, 1.5f }, c))
            {
                var r = Sigmoid(bias, causal);
                var context = $"{r.Name} V=1: {c}";
                var result = AssertMatchesReference(r, c, c.Options, ones);
                ForEachRow(s, c.Options, (row, pos) =>
                {
                    double own = result.LogSumExp[row];
                    bool none = double.IsNegativeInfinity(own); // no allowed key: output 0
                    new Tolerance(0, (2 * s.SeqK + 4 + (none ? 0 : Math.Abs(own))) * Unit).AssertClose(
                        Row(result.Output, row, s.ValueDim), Filled(s.ValueDim, none ? 0 : Math.Exp(own)),
                        $"output row {row} vs exp(own log-sum-exp)", context);
                });
            }
        });

    /// <summary>
    /// Sigmoid attention is not divided by the weight sum. With Scale = 1/D every logit obeys
    /// |s| &lt;= (1/D) sum_c |q_c k_c| &lt;= 1 (inputs in [-1, 1)), so with b = 0 and V = 1 a row with
    /// n allowed keys has n sigma(-1) &lt;= O &lt;= n sigma(1), without any reference: more than
    /// 1.07 once n &gt;= 4, where a kernel that divides would give 1. Slack (n + D + 4) u
    /// relative: the fp32 logit may exceed 1 by D u (sigma moves by less), the sum of n
    /// weights rounds by (n - 1) u, the sigmoid by a few u.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property SigmoidOutputIsNotDivided() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            bool causal = IsCausal(c);
            var options = c.Options with { Scale = 1f / s.HeadDim };
            var result = RunNormalizer(c, Ones(s.ValueLength), causal, new SigmoidNormalizer(0f), options);
            double low = 1 / (1 + Math.E), high = 1 / (1 + 1 / Math.E);
            var context = $"sigmoid(0) V=1 scale=1/D, causal={causal}: {c}";
            ForEachRow(s, options, (row, pos) =>
            {
                int n = Allowed(causal, pos, s.SeqK);
                double slack = (n + s.HeadDim + 4) * Unit;
                foreach (var o in Row(result.Output, row, s.ValueDim))
                    if (!(o >= n * low * (1 - slack) && o <= n * high * (1 + slack)))
                        throw new XunitException(
                            $"row {row} (position {pos}, {n} keys): output {o:R} outside [{n * low:g6}, {n * high:g6}]. {context}");
            });
        });

    /// <summary>
    /// Clipped softmax weights lie in [0, 1] and sum to at most zeta - gamma (w_j &lt;= (zeta -
    /// gamma) p_j as gamma &lt;= 0), and the output is not divided: with V = 1 every element of a
    /// row with n allowed keys is in [0, min(n, zeta - gamma)]. Logits are scaled by 4/sqrt(D)
    /// so single keys dominate and the upper clip is reached (always for n = 1, e.g. the first
    /// causal top-left row: p = 1 gives w = min(1, zeta) = 1 where an unclipped weight would be
    /// zeta). The bounds get the weights' relative error (1e-5, as f = zeta - gamma absorbs it
    /// in the reference comparison) and the sum's (n u). The values also match the reference
    /// (which then equal its weight sums) with the clipped tolerance.
    /// </summary>
    [Property(MaxTest = 60)]
    public Property ClippedOutputsLieBetweenZeroAndTheKeyCount() =>
        Prop.ForAll(Cases, c =>
        {
            var s = c.Shape;
            bool causal = IsCausal(c);
            var options = c.Options with { Scale = 4f / MathF.Sqrt(s.HeadDim) };
            var ones = Ones(s.ValueLength);
            foreach (var (zeta, gamma) in Selected(new[] { (1f, -0.02f), (1.5f, -0.05f), (4f, -0.5f) }, c))
            {
                var r = Clipped(zeta, gamma, causal);
                var result = AssertMatchesReference(r, c, options, ones);
                var context = $"{r.Name} V=1 scale=4/sqrt(D): {c}";
                ForEachRow(s, options, (row, pos) =>
                {
                    int n = Allowed(causal, pos, s.SeqK);
                    double high = Math.Min(n, (double)zeta - gamma) * (1 + 1e-5 + n * Unit);
                    foreach (var o in Row(result.Output, row, s.ValueDim))
                        if (!(o >= 0 && o <= high))
                            throw new XunitException(
                                $"row {row} (position {pos}, {n} keys): output {o:R} outside [0, {high:g6}]. {context}");
                });
            }
        });

    // ---------------------------------------------------------------------------------------
    // 3. Fully masked rows.

    /// <summary>
    /// Causal, bottom-right, seqQ &gt; seqK: the first seqQ - seqK rows see no key. For every
    /// normalizer (softmax through the three-parameter entry point, each replacement, clipped
    /// (1, 0)) their outputs are exactly 0 (not NaN: a replacement has no max to guard 0/0 or
    /// exp(-inf + inf)) and their log-sum-exp exactly -infinity; the outputs are pre-filled
    /// with a sentinel, so unwritten rows fail. The other rows match the reference as in
    /// <see cref="ReplacementsMatchTheirReference"/>.
    /// </summary>
    [Property(MaxTest = 60)]
    public Property FullyMaskedRowsGiveZerosAndNegativeInfinity() =>
        Prop.ForAll(MaskedRowCases, c =>
        {
            var s = c.Shape;
            var all = Replacements(s, causal: true).Append(Clipped(1f, 0f, causal: true))
                .Append(Make("softmax", default(SoftmaxNormalizer), causal: true, (_, _) => 1));
            foreach (var r in Selected(all.ToArray(), c))
            {
                var result = AssertMatchesReference(r, c, c.Options, c.Value);
                var context = $"{r.Name}: {c}";
                for (int bh = 0; bh < s.Batch * s.Heads; bh++)
                    for (int i = 0; i < s.SeqQ - s.SeqK; i++)
                    {
                        long row = (long)bh * s.SeqQ + i;
                        if (!float.IsNegativeInfinity(result.LogSumExp[row]))
                            throw new XunitException($"row {row}: log-sum-exp {result.LogSumExp[row]}, expected -inf. {context}");
                        for (int col = 0; col < s.ValueDim; col++)
                            if (result.Output[row * s.ValueDim + col] is var o && (o != 0f || float.IsNaN(o)))
                                throw new XunitException($"row {row} col {col}: output {o}, expected 0. {context}");
                    }
            }
        });

    // ---------------------------------------------------------------------------------------
    // Replacements and helpers.

    /// <summary>
    /// A replacement bound to a mask, with its tolerance factor f(position, W): atol = 1e-5 f
    /// for the outputs of a row at that query position whose reference weight sum is W.
    /// </summary>
    protected sealed record Replacement(string Name, IAttentionVariant Variant, Func<int, double, double> Factor);

    /// <summary>The replacements property 1 covers, under <see cref="CausalMask"/> or <see cref="NoMask"/>.</summary>
    protected static IReadOnlyList<Replacement> Replacements(AttentionShape shape, bool causal) =>
    [
        Sigmoid(0f, causal),
        Sigmoid(SigmoidNormalizer.ForSequence(shape.SeqK).Bias, causal),
        Sigmoid(2.5f, causal),
        Softplus(8, 1f, causal),
        Softplus(8, 2f, causal),
        Clipped(1f, -0.02f, causal),
        Clipped(1.5f, -0.05f, causal),
    ];

    /// <summary>Sigmoid(b): not normalized, f = max(1, W).</summary>
    protected static Replacement Sigmoid(float bias, bool causal) =>
        Make($"sigmoid(b={bias:R})", new SigmoidNormalizer(bias), causal, (_, w) => Math.Max(1, w));

    /// <summary>Softplus(n, p): normalized, f = p kappa(position).</summary>
    protected static Replacement Softplus(int trainLength, float power, bool causal) =>
        Make($"softplus(n={trainLength}, p={power:R})", new SoftplusNormalizer(trainLength, power), causal,
            (pos, _) => power * Math.Max(1, Math.Log(Math.Max(pos + 1.0, 1.0)) / Math.Log(trainLength)));

    /// <summary>Clipped softmax(zeta, gamma): f = zeta - gamma.</summary>
    protected static Replacement Clipped(float zeta, float gamma, bool causal) =>
        Make($"clipped(zeta={zeta:R}, gamma={gamma:R})", new ClippedSoftmaxNormalizer(zeta, gamma), causal,
            (_, _) => (double)zeta - gamma);

    private static Replacement Make<TNorm>(string name, TNorm norm, bool causal, Func<int, double, double> factor)
        where TNorm : struct, INormalizer =>
        causal
            ? new(name + " causal", new AttentionVariant<NoScore, CausalMask, TNorm>(name + " causal", default, default, norm), factor)
            : new(name, new AttentionVariant<NoScore, NoMask, TNorm>(name, default, default, norm), factor);

    /// <summary>
    /// Runs <paramref name="r"/> with <paramref name="value"/> on the backend and checks it
    /// against the reference: outputs row by row with atol 1e-5 f(position, W), rtol 1e-4;
    /// weight sums exp(lse) with <see cref="Tolerance.Kernel"/>. Returns the kernel's result.
    /// </summary>
    private AttentionResult AssertMatchesReference(Replacement r, AttentionCase c, AttentionOptions options, float[] value)
    {
        var s = c.Shape;
        var result = AttentionRun.Run(Backend, r.Variant, s, c.Query, c.Key, value, options);
        var (output, lse) = r.Variant.Reference(s, c.Query, c.Key, value, options);
        var context = $"{r.Name}: {c} scale={options.ScaleFor(s.HeadDim):R}";
        ForEachRow(s, options, (row, pos) =>
        {
            var tolerance = new Tolerance(1e-5 * r.Factor(pos, Math.Exp(lse[row])), 1e-4);
            tolerance.AssertClose(Row(result.Output, row, s.ValueDim), Row(output, row, s.ValueDim),
                $"output row {row} (position {pos})", context);
        });
        Tolerance.Kernel.AssertClose(result.LogSumExp.Select(x => (float)Math.Exp(x)).ToArray(),
            lse.Select(Math.Exp).ToArray(), "weight sum exp(log-sum-exp)", context);
        return result;
    }

    /// <summary>Runs <paramref name="norm"/> with no score modifier under the causal mask or none.</summary>
    private AttentionResult RunNormalizer<TNorm>(AttentionCase c, float[] value, bool causal, TNorm norm,
        AttentionOptions options)
        where TNorm : struct, INormalizer
    {
        var s = c.Shape;
        var (output, lse) = AttentionRun.Allocate(s);
        if (causal)
            Backend.Attention(s, c.Query, c.Key, value, output, lse, default(NoScore), default(CausalMask), norm, options);
        else
            Backend.Attention(s, c.Query, c.Key, value, output, lse, default(NoScore), default(NoMask), norm, options);
        return new(output, lse);
    }

    /// <summary>The key tile of the backend's kernel on <paramref name="shape"/> (for the
    /// number of online-softmax rescalings).</summary>
    protected abstract int KeyTile(AttentionShape shape);

    /// <summary>The case's mask: causal when the selector's low bit is set.</summary>
    protected static bool IsCausal(AttentionCase c) => (c.Variant & 1) == 1;

    /// <summary>Keys the mask allows to a query at <paramref name="position"/>.</summary>
    protected static int Allowed(bool causal, int position, int seqK) =>
        causal ? Math.Clamp(position + 1, 0, seqK) : seqK;

    /// <summary>Calls <paramref name="action"/>(row, position) for every (batch, head, query) row.</summary>
    protected static void ForEachRow(AttentionShape s, AttentionOptions options, Action<int, int> action)
    {
        int offset = options.QueryOffsetFor(s);
        for (int row = 0; row < s.Batch * s.Heads * s.SeqQ; row++) action(row, row % s.SeqQ + offset);
    }

    private static ReadOnlySpan<T> Row<T>(T[] data, int row, int width) => data.AsSpan(row * width, width);

    private static double[] Filled(int length, double value) => Enumerable.Repeat(value, length).ToArray();

    private static float[] Ones(long length)
    {
        var data = new float[length];
        data.AsSpan().Fill(1f);
        return data;
    }
}

/// <summary>The normalizer properties on the host SIMD kernel (default tuning).</summary>
[Collection(HostBackendCollection.Name)]
public sealed class HostNormalizerProperties(HostBackendFixture fixture) : NormalizerPropertiesBase
{
    /// <inheritdoc/>
    protected override TestDevice Backend => fixture.Backend;

    /// <summary>The host limits of the backend properties (sequences up to 200, reference
    /// budget 8e6).</summary>
    protected override CaseLimits Limits => CaseLimits.Host;

    /// <summary>All head dims of <see cref="AttentionGen.HeadDims"/> (1 to 256).</summary>
    protected override Gen<(int HeadDim, int ValueDim)> Dims => DimsFrom(AttentionGen.HeadDims);

    /// <inheritdoc/>
    protected override int KeyTile(AttentionShape shape) => AttentionTuning.Default.KeyTile;
}

/// <summary>
/// <see cref="NormalizerPropertiesBase"/> bound to an ILGPU CPU backend and a range of head
/// dims. Not public, so xUnit does not discover it and run the properties at the host counts;
/// the public classes below forward to it with 8-20 cases per property.
/// </summary>
internal sealed class IlgpuCpuNormalizerRunner(TestDevice backend, int[] dims, bool wide) : NormalizerPropertiesBase
{
    protected override TestDevice Backend => backend;

    /// <summary>
    /// Sequences up to 80 (the register-tiled kernel's tiles are 64 x 64, the general one's
    /// 16 x 16, so both see several tiles and ragged edges), batch 1-2, 1-2 query heads
    /// (2 sharing one KV head: GQA/MQA). The emulated launch costs about 0.1 s per
    /// (query tile, key tile) of each (batch, head), so these limits, not the reference's
    /// budget, bound the run time; the budget still trims the widest dims.
    /// </summary>
    protected override CaseLimits Limits => wide
        ? new(MaxSeq: 80, MaxBatch: 2, MaxHeads: 2, Budget: 2_000_000)
        : new(MaxSeq: 80, MaxBatch: 2, MaxHeads: 2, Budget: 1_200_000);

    /// <summary>Pairs from <c>dims</c> whose max selects this runner's kernel.</summary>
    protected override Gen<(int HeadDim, int ValueDim)> Dims =>
        from d in DimsFrom(dims)
        where Math.Max(d.HeadDim, d.ValueDim) > 128 == wide
        select d;

    /// <summary>Two normalizers (or parameter sets) per case, rotating with the case's selector.</summary>
    protected override int NormalizersPerCase => 2;

    protected override int KeyTile(AttentionShape shape) => FlashAttention.IlgpuTileSizes(shape).KeyTile;
}

/// <summary>
/// The normalizer properties on the register-tiled ILGPU kernel (headDim, valueDim &lt;= 128:
/// 64 x 64 tiles, 8 or 16 output columns per thread) on ILGPU's CPU accelerator with warp
/// shuffles. The emulated kernel costs 0.1-0.8 s per launch (clipped softmax launches twice),
/// so each property runs 10-20 cases of two normalizers or parameter sets each (rotating
/// over the host's full lists), about 2.5 minutes for this class and the wide one together.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class IlgpuCpuNormalizerProperties(IlgpuCpuFixture fixture)
{
    private readonly IlgpuCpuNormalizerRunner _runner = new(fixture.Backend, [1, 3, 16, 64, 80, 128], wide: false);

    [Property(MaxTest = 20)]
    public Property ReplacementsMatchTheirReference() => _runner.ReplacementsMatchTheirReference();

    [Property(MaxTest = 8)]
    public Property ClippedWithZetaOneGammaZeroIsSoftmax() => _runner.ClippedWithZetaOneGammaZeroIsSoftmax();

    [Property(MaxTest = 10)]
    public Property SoftplusRowsSumToOne() => _runner.SoftplusRowsSumToOne();

    [Property(MaxTest = 10)]
    public Property SoftplusWithinTrainingLengthHasKappaOne() => _runner.SoftplusWithinTrainingLengthHasKappaOne();

    [Property(MaxTest = 10)]
    public Property SigmoidWithUnitValuesSumsTheSigmoids() => _runner.SigmoidWithUnitValuesSumsTheSigmoids();

    [Property(MaxTest = 12)]
    public Property SigmoidOutputIsNotDivided() => _runner.SigmoidOutputIsNotDivided();

    [Property(MaxTest = 8)]
    public Property ClippedOutputsLieBetweenZeroAndTheKeyCount() => _runner.ClippedOutputsLieBetweenZeroAndTheKeyCount();

    [Property(MaxTest = 12)]
    public Property FullyMaskedRowsGiveZerosAndNegativeInfinity() => _runner.FullyMaskedRowsGiveZerosAndNegativeInfinity();

    /// <summary>Every property of the base class has a forwarder here and in
    /// <see cref="IlgpuCpuWideNormalizerProperties"/>.</summary>
    [Fact]
    public void ForwardsEveryNormalizerProperty()
    {
        var tests = typeof(NormalizerPropertiesBase).GetMethods()
            .Where(m => m.GetCustomAttributes(typeof(FactAttribute), true).Length > 0)
            .Select(m => m.Name).ToArray();
        Assert.NotEmpty(tests);
        foreach (var type in new[] { typeof(IlgpuCpuNormalizerProperties), typeof(IlgpuCpuWideNormalizerProperties) })
        {
            var missing = tests.Where(name => type.GetMethod(name) is not { } m
                || m.GetCustomAttributes(typeof(FactAttribute), true).Length == 0).ToArray();
            Assert.True(missing.Length == 0, $"{type.Name} does not forward: {string.Join(", ", missing)}");
        }
    }
}

/// <summary>
/// The normalizer properties on the general ILGPU kernel (max(headDim, valueDim) in
/// (128, 256]: 16 x 16 tiles, 2 x 2 scores per thread) on ILGPU's CPU accelerator.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class IlgpuCpuWideNormalizerProperties(IlgpuCpuFixture fixture)
{
    private readonly IlgpuCpuNormalizerRunner _runner = new(fixture.Backend, [3, 64, 129, 160, 200, 256], wide: true);

    [Property(MaxTest = 20)]
    public Property ReplacementsMatchTheirReference() => _runner.ReplacementsMatchTheirReference();

    [Property(MaxTest = 8)]
    public Property ClippedWithZetaOneGammaZeroIsSoftmax() => _runner.ClippedWithZetaOneGammaZeroIsSoftmax();

    [Property(MaxTest = 10)]
    public Property SoftplusRowsSumToOne() => _runner.SoftplusRowsSumToOne();

    [Property(MaxTest = 10)]
    public Property SoftplusWithinTrainingLengthHasKappaOne() => _runner.SoftplusWithinTrainingLengthHasKappaOne();

    [Property(MaxTest = 10)]
    public Property SigmoidWithUnitValuesSumsTheSigmoids() => _runner.SigmoidWithUnitValuesSumsTheSigmoids();

    [Property(MaxTest = 12)]
    public Property SigmoidOutputIsNotDivided() => _runner.SigmoidOutputIsNotDivided();

    [Property(MaxTest = 8)]
    public Property ClippedOutputsLieBetweenZeroAndTheKeyCount() => _runner.ClippedOutputsLieBetweenZeroAndTheKeyCount();

    [Property(MaxTest = 12)]
    public Property FullyMaskedRowsGiveZerosAndNegativeInfinity() => _runner.FullyMaskedRowsGiveZerosAndNegativeInfinity();
}

/// <summary>
/// The normalizers' constructors reject parameters outside their documented domains with
/// <see cref="ArgumentOutOfRangeException"/> naming the parameter, and accept the domain's edges.
/// </summary>
public sealed class NormalizerConstructorTests
{
    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void SigmoidRejectsNonFiniteBias(float bias)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new SigmoidNormalizer(bias));
        Assert.Equal("bias", error.ParamName);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void SigmoidForSequenceRejectsNoKeys(int keys) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => SigmoidNormalizer.ForSequence(keys));

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(int.MinValue)]
    public void SoftplusRejectsTrainLengthBelowTwo(int trainLength)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new SoftplusNormalizer(trainLength, 1f));
        Assert.Equal("trainLength", error.ParamName);
    }

    [Theory]
    [InlineData(0.999f)]
    [InlineData(0f)]
    [InlineData(-1f)]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void SoftplusRejectsPowerBelowOneOrNotFinite(float power)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new SoftplusNormalizer(8, power));
        Assert.Equal("power", error.ParamName);
    }

    [Theory]
    [InlineData(0.999f)]
    [InlineData(0f)]
    [InlineData(-1f)]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void ClippedRejectsZetaBelowOneOrNotFinite(float zeta)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ClippedSoftmaxNormalizer(zeta, -0.01f));
        Assert.Equal("zeta", error.ParamName);
    }

    [Theory]
    [InlineData(0.001f)]
    [InlineData(1f)]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void ClippedRejectsGammaAboveZeroOrNotFinite(float gamma)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ClippedSoftmaxNormalizer(1f, gamma));
        Assert.Equal("gamma", error.ParamName);
    }

    /// <summary>The edges of each domain are valid: any finite bias, n = 2 and p = 1,
    /// zeta = 1 and gamma = 0 (softmax).</summary>
    [Fact]
    public void DomainEdgesAreAccepted()
    {
        Assert.Equal(float.MaxValue, new SigmoidNormalizer(float.MaxValue).Bias);
        Assert.Equal(-float.MaxValue, new SigmoidNormalizer(-float.MaxValue).Bias);
        Assert.Equal(0f, SigmoidNormalizer.ForSequence(1).Bias);
        _ = new SoftplusNormalizer(2, 1f);
        _ = new SoftplusNormalizer(int.MaxValue, 1000f);
        _ = new ClippedSoftmaxNormalizer(1f, 0f);
        _ = new ClippedSoftmaxNormalizer(1f, -0f);
        _ = new ClippedSoftmaxNormalizer(1e30f, -1e30f);
    }
}

/// <summary>
/// Regressions for two defects found while writing the normalizer properties, outside the
/// input range those properties generate (every logit of a row strongly negative).
/// </summary>
public sealed class NormalizerRegressionTests
{
    /// <summary>
    /// Softplus is l1-normalized, so every output is a convex combination of the row's values,
    /// however small the weights: one query, 64 keys with logits in [-101.2, -92] (weights
    /// about e^-92, still normal or subnormal fp32, sum below 1/float.MaxValue). The output
    /// must be finite and within [min v, max v] per column (slack 1e-5 for the fp32 rounding).
    /// </summary>
    [Theory]
    [InlineData(DeviceKind.Host)]
    [InlineData(DeviceKind.IlgpuCpu)]
    public void SoftplusRowWithTinyWeightSumStaysFinite(DeviceKind kind)
    {
        // The kernels used to scale by 1/l, which overflows for l below 1/float.MaxValue.
        using TestDevice host = kind == DeviceKind.Host ? new TestDevice(ComputeDevice.Open(DeviceKind.Host)) : new TestDevice(ComputeDevice.Open(kind));
        var shape = new AttentionShape(1, 1, 1, 1, 64, 1, 4);
        var random = new Random(3);
        var query = new[] { -1f };
        var key = Enumerable.Range(0, 64).Select(_ => (float)(1 + 0.1 * random.NextDouble())).ToArray();
        var value = AttentionCase.Uniform(3, 2, shape.ValueLength);
        var (output, lse) = AttentionRun.Allocate(shape);
        host.Attention(shape, query, key, value, output, lse, default(NoScore), default(NoMask),
            new SoftplusNormalizer(1 << 30, 1f), new AttentionOptions { Scale = 92f });
        for (int c = 0; c < shape.ValueDim; c++)
        {
            var column = Enumerable.Range(0, shape.SeqK).Select(j => value[j * shape.ValueDim + c]).ToArray();
            Assert.InRange(output[c], column.Min() - 1e-5f, column.Max() + 1e-5f);
        }
    }

    /// <summary>
    /// The reference's softplus weight is the defining formula in double: ln(1 + e^x) for
    /// x &lt;&lt; 0 is e^x (1 - e^x / 2) within e^(2x) / 3 relative, so it must match that to
    /// 1e-12 relative (a few hundred double ulps) down to x = -700.
    /// </summary>
    [Fact]
    public void ReferenceSoftplusWeightKeepsRelativeAccuracyForNegativeLogits()
    {
        var softplus = new SoftplusNormalizer(1 << 30, 1f);
        foreach (double x in new[] { -20.0, -30, -40, -100, -700 })
        {
            double e = Math.Exp(x), expected = e * (1 - e / 2);
            double actual = softplus.ReferenceWeight(x, 0, 0);
            Assert.True(Math.Abs(actual - expected) <= 1e-12 * expected, $"x={x}: {actual:R}, expected {expected:R}");
        }
    }
}
