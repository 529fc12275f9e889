using System.Diagnostics;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>
/// Every registered variant on one device against the fp64 reference, over a set of shapes.
/// Pass rule per element: |out - ref| &lt;= atol + rtol |ref| + 2 u L max|v| with atol 1e-5,
/// rtol 1e-4, u = 2^-24 and L = |lse_ref| + ln(seqK) + 20, a bound on the magnitude of every
/// logit that carries weight in the row. Why the last term: a score modifier works in fp32
/// (its contract), so a logit of magnitude L is known only to u L (ALiBi at 8192 keys reaches
/// |s| = 4096, where one ulp is 4.9e-4); that error moves each p by a factor (1 +- u L) in
/// any fp32 kernel, PyTorch's included. The log-sum-exp uses atol + rtol |ref|.
/// <para>
/// With --dtype half or bfloat16 the same table runs with Q, K and V rounded to that type and
/// passed as it (<see cref="IAttentionVariant.Forward{TStorage}"/>), against the reference on
/// the rounded values (widened exactly): the rounding of the inputs is not an error of the
/// kernel. The rule is the same, plus 2 u' max|v| where the call may run on the tensor cores
/// (<see cref="FlashAttention.WeightRounding"/>; single-pass softmax only), whose P is rounded
/// to the 16-bit type (unit u') before P V.
/// </para>
/// </summary>
internal static class CheckCommand
{
    public const double Atol = 1e-5, Rtol = 1e-4;

    public static int Run(CliOptions options, TextWriter output)
    {
        if (options.Precisions is { } precisions) // only the fp32 prefill cases
        {
            if (options.DTypes is not null || options.Only is not null || options.Parts > 1
                || options.Large)
                throw new UsageException("--precision checks the fp32 prefill cases only: it "
                    + "cannot be combined with --dtype, --only, --part or --large");
            using var device = ComputeDevice.Open(options.Device);
            output.WriteLine($"device: {device.Name}");
            var (n, bad) = Fp32PrefillCheck.Run(device, output, precisions);
            output.WriteLine($"prefill-fp32: {n} checked, {bad} failed");
            return bad == 0 ? 0 : 1;
        }
        var variants = Select(options);
        DType[] types = options.DTypes ?? [DType.Float];
        using var backend = ComputeDevice.Open(options.Device);
        output.WriteLine($"device: {backend.Name}");
        // Layouts, the 16-bit prefill cases, decode and the rest: with the whole registry, or
        // in part 0 of a split.
        bool whole = options.Only is null && options.Part == 0;
        int failed = 0;
        foreach (var type in types)
        {
            failed += type switch
            {
                DType.Half => Table(backend, variants, options.Large, type, DTypeOps.ToHalf,
                    x => (float)x, output),
                DType.BFloat16 => Table(backend, variants, options.Large, type,
                    BFloat16.FromSingle, BFloat16.ToSingle, output),
                _ => Table(backend, variants, options.Large, type, x => x, x => x, output),
            };
            if (!whole) continue;
            if (type == DType.Float)
                failed += Fp32Sections(backend, options.Large, output,
                    prefill16: types.Length == 1);
            else
                failed += Prefill16(backend, [type], output);
        }
        return failed == 0 ? 0 : 1;
    }

    /// <summary>The variant table with Q, K and V stored as <typeparamref name="T"/>: one row
    /// per (variant, shape), then the summary line; returns the failures.</summary>
    private static int Table<T>(ComputeDevice backend, List<IAttentionVariant> variants,
        bool large, DType type, Func<float, T> narrow, Func<T, float> widen, TextWriter output)
        where T : unmanaged
    {
        // The float table's columns as before; the 16-bit one's names are longer.
        string suffix = type == DType.Float ? "" : $"/{type.Name()}";
        int width = type == DType.Float ? 22 : 31;
        output.WriteLine($"{"variant".PadRight(width)} {"backend",-10} {"shape",-52} "
            + $"{"max abs",10} {"max rel",10}  result");
        int checkedCount = 0, failed = 0;
        double worst = 0;
        var clock = Stopwatch.StartNew();
        foreach (var variant in variants)
        foreach (var (shape, alignment) in Shapes(large))
        {
            var opts = new AttentionOptions { Alignment = alignment };
            // The same data every run, and in every type (rounded from the same floats).
            var rng = new Random(StableSeed($"{variant.Name} {shape} {alignment}"));
            T[] q = DTypeOps.Narrow(Random(rng, shape.QueryLength), narrow),
                k = DTypeOps.Narrow(Random(rng, shape.KeyLength), narrow),
                v = DTypeOps.Narrow(Random(rng, shape.ValueLength), narrow);
            // The values the kernel computes with, for the reference (widening is exact).
            float[] qf = DTypeOps.Widen(q, widen), kf = DTypeOps.Widen(k, widen),
                vf = DTypeOps.Widen(v, widen);
            var o = new float[shape.OutputLength];
            var lse = new float[shape.LogSumExpLength];
            variant.Forward<T>(backend, shape, q, k, v, o, lse, opts);
            var (refO, refLse) = variant.Reference(shape, qf, kf, vf, opts);
            var norm = NormalizerOf(variant);
            double rounding = norm.SinglePassSoftmax
                ? FlashAttention.WeightRounding<T>(backend, shape) : 0;
            var (abs, rel, ok) = CompareOutput(o, refO, refLse, shape, vf, norm.Divides,
                rounding);
            // Clipped softmax: ln(sum w) is ill-conditioned where (zeta - gamma) p + gamma cancels
            // (sum w -> 0); its weight sum is not, so that is compared: |S - S_ref| <= atol (zeta - gamma).
            var (absL, relL, okL) = norm.Stretch is { } stretch
                ? CompareSums(lse, refLse, Atol * stretch) : Compare(lse, refLse);
            ok &= okL;
            abs = Math.Max(abs, absL);
            checkedCount++;
            if (!ok) failed++;
            worst = Math.Max(worst, abs);
            string label = $"{shape} {(alignment == QueryAlignment.TopLeft ? "top-left" : "")}";
            output.WriteLine($"{(variant.Name + suffix).PadRight(width)} {backend.Kind,-10} "
                + $"{label,-52} {abs,10:E2} {rel,10:E2}  {(ok ? "pass" : "FAIL")}");
        }
        output.WriteLine($"({clock.Elapsed.TotalSeconds:F1} s)");
        string which = type == DType.Float ? "" : $" ({type.Name()})";
        output.WriteLine(
            $"variants{which}: {checkedCount} checked, {failed} failed, worst error {worst:E2}");
        return failed;
    }

    /// <summary>The checks of fp32 calls beyond the variant table (layouts, the TF32 prefill
    /// cases, decode, policies, linear attention, mechanisms), and, when
    /// <paramref name="prefill16"/>, the 16-bit prefill cases in both types (the default
    /// check's); returns the failures.</summary>
    private static int Fp32Sections(ComputeDevice backend, bool large, TextWriter output,
        bool prefill16)
    {
        var (layouts, failed) = LayoutCheck.Run(backend, large, output);
        output.WriteLine($"layouts: {layouts} checked, {failed} failed");
        if (prefill16) failed += Prefill16(backend, [DType.Half, DType.BFloat16], output);
        var (tf32, tf32Failed) = Fp32PrefillCheck.Run(backend, output, [AttentionPrecision.Tf32]);
        output.WriteLine($"prefill-tf32: {tf32} checked, {tf32Failed} failed");
        failed += tf32Failed;
        var (decodes, decodesFailed) = DecodeCheck.Run(backend, output);
        output.WriteLine($"decode: {decodes} checked, {decodesFailed} failed");
        failed += decodesFailed;
        var (policies, policiesFailed) = PolicyCheck.Run(backend, output);
        output.WriteLine($"policies: {policies} checked, {policiesFailed} failed");
        failed += policiesFailed;
        var (linear, linearFailed) = LinearCheck.Run(backend, output);
        output.WriteLine($"linear attention: {linear} checked, {linearFailed} failed");
        failed += linearFailed;
        var (mechanisms, mechanismsFailed) = MechanismCheck.Run(backend, output);
        output.WriteLine($"mechanisms: {mechanisms} checked, {mechanismsFailed} failed");
        return failed + mechanismsFailed;
    }

    /// <summary>Exact attention's 16-bit prefill cases (<see cref="HalfPrefillCheck"/>) in
    /// <paramref name="types"/>; returns the failures.</summary>
    private static int Prefill16(ComputeDevice backend, DType[] types, TextWriter output)
    {
        var (count, failed) = HalfPrefillCheck.Run(backend, output, types);
        string which = types.Length == 1 ? $" ({types[0].Name()})" : "";
        output.WriteLine($"prefill-16bit{which}: {count} checked, {failed} failed");
        return failed;
    }

    /// <summary>
    /// --only: the variants whose display name contains the text (a selection, never dispatch);
    /// --part K/N: the registry entries whose index is K mod N. A selection that is empty is a
    /// usage error: a typo in --only must not pass as "0 checked, 0 failed".
    /// </summary>
    private static List<IAttentionVariant> Select(CliOptions options)
    {
        var all = VariantRegistry.All;
        string? only = options.Only;
        var matching = Enumerable.Range(0, all.Count)
            .Where(i => only is null || all[i].Name.Contains(only, StringComparison.Ordinal))
            .ToList();
        if (matching.Count == 0)
            throw new UsageException($"--only '{only}' matches no variant (expected text "
                + $"contained in one of: {string.Join(", ", all.Select(v => v.Name))})");
        var selected = matching.Where(i => i % options.Parts == options.Part)
            .Select(i => all[i]).ToList();
        string which = only is null ? "" : $" --only '{only}' matches";
        if (selected.Count == 0)
            throw new UsageException($"--part '{options.Part}/{options.Parts}' selects none of "
                + $"the {matching.Count} variants{which} (registry entries "
                + $"{string.Join(", ", matching)}; expected K/N taking those whose index is K "
                + "mod N)");
        return selected;
    }

    /// <summary>Max abs error, max rel error (where |ref| &gt; atol) and the pass verdict.
    /// Infinities must match exactly (fully masked rows give -inf log-sum-exp).</summary>
    public static (double Abs, double Rel, bool Ok) Compare(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        double maxAbs = 0, maxRel = 0;
        bool ok = actual.Length == expected.Length;
        for (int i = 0; i < actual.Length && ok; i++)
        {
            double a = actual[i], e = expected[i];
            if (double.IsInfinity(e) || double.IsInfinity(a)) { ok &= a == e; continue; }
            double err = Math.Abs(a - e);
            if (double.IsNaN(err)) { ok = false; continue; }
            maxAbs = Math.Max(maxAbs, err);
            if (Math.Abs(e) > Atol) maxRel = Math.Max(maxRel, err / Math.Abs(e));
            ok &= err <= Atol + Rtol * Math.Abs(e);
        }
        return (maxAbs, maxRel, ok);
    }

    /// <summary>Output rows with the logit-magnitude term of the pass rule (see the class). A
    /// normalizer that does not divide by the weight sum S (sigmoid) gives a sum of up to seqK
    /// weighted values, not a weighted mean: the rule then applies to out / S (atol and the
    /// logit term scale with S = exp(lse_ref), the log-sum-exp being ln S there). A call that
    /// may run on the tensor cores passes <see cref="FlashAttention.WeightRounding"/>.</summary>
    public static (double Abs, double Rel, bool Ok) CompareOutput(ReadOnlySpan<float> actual,
        ReadOnlySpan<double> expected, ReadOnlySpan<double> lse, AttentionShape shape, ReadOnlySpan<float> value,
        bool dividesBySum = true, double weightRounding = 0)
    {
        const double u = 1.0 / (1 << 24);
        double vmax = 0;
        foreach (float x in value) vmax = Math.Max(vmax, Math.Abs(x));
        double maxAbs = 0, maxRel = 0;
        bool ok = actual.Length == expected.Length;
        int dv = shape.ValueDim;
        for (int i = 0; i < actual.Length && ok; i++)
        {
            double l = lse[i / dv];
            double logit = double.IsInfinity(l) ? 0 : Math.Abs(l) + Math.Log(shape.SeqK) + 20;
            double sum = dividesBySum || double.IsInfinity(l) ? 1 : Math.Max(1, Math.Exp(l));
            double a = actual[i], e = expected[i], err = Math.Abs(a - e);
            if (double.IsNaN(err)) { ok = false; continue; }
            maxAbs = Math.Max(maxAbs, err);
            if (Math.Abs(e) > Atol) maxRel = Math.Max(maxRel, err / Math.Abs(e));
            // weightRounding: the unit of the 16-bit type P is rounded to before P V on the
            // tensor cores (each weight off by at most that much relatively): u' max|v|, twice.
            ok &= err <= sum * (Atol + 2 * u * logit * vmax + 2 * weightRounding * vmax)
                + Rtol * Math.Abs(e);
        }
        return (maxAbs, maxRel, ok);
    }

    /// <summary>The variant's normalizer facts: zeta - gamma for clipped softmax (else null),
    /// whether it divides by the row's weight sum (all but sigmoid), and whether it is
    /// single-pass softmax (the only normalizer the tensor cores run).</summary>
    private static (double? Stretch, bool Divides, bool SinglePassSoftmax) NormalizerOf(
        IAttentionVariant variant)
    {
        var probe = new NormalizerProbe();
        variant.DeviceTyped.Accept(probe);
        return (probe.Stretch, probe.Divides, probe.SinglePassSoftmax);
    }

    private sealed class NormalizerProbe : IVariantVisitor
    {
        public double? Stretch;
        public bool Divides, SinglePassSoftmax;

        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer
        {
            Stretch = norm is ClippedSoftmaxNormalizer clipped ? clipped.Stretch : null;
            Divides = TNorm.DividesBySum;
            SinglePassSoftmax = TNorm.IsSoftmax && !TNorm.NeedsLogSumExp;
        }
    }

    /// <summary>exp(actual) against exp(expected) with an absolute bound: weight sums.</summary>
    private static (double Abs, double Rel, bool Ok) CompareSums(ReadOnlySpan<float> actual,
        ReadOnlySpan<double> expected, double atol)
    {
        double maxAbs = 0;
        bool ok = actual.Length == expected.Length;
        for (int i = 0; i < actual.Length && ok; i++)
        {
            double err = Math.Abs(Math.Exp(actual[i]) - Math.Exp(expected[i]));
            if (double.IsNaN(err)) { ok = false; continue; }
            maxAbs = Math.Max(maxAbs, err);
            ok &= err <= atol;
        }
        return (maxAbs, 0, ok);
    }

    // FNV-1a: HashCode.Combine is randomized per process, which would change the data per run.
    private static int StableSeed(string text)
    {
        uint h = 2166136261;
        foreach (char c in text) h = (h ^ c) * 16777619;
        return (int)(h & 0x7fffffff);
    }

    private static float[] Random(Random rng, long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    private static List<(AttentionShape, QueryAlignment)> Shapes(bool large)
    {
        var br = QueryAlignment.BottomRight;
        var list = new List<(AttentionShape, QueryAlignment)>
        {
            (AttentionShape.Self(1, 2, 1, 64), br),
            (AttentionShape.Self(2, 4, 77, 64), br),
            (new AttentionShape(1, 8, 2, 129, 129, 128, 128), br),
            (new AttentionShape(1, 4, 1, 33, 200, 80, 48), br),
            (new AttentionShape(1, 4, 1, 33, 200, 80, 48), QueryAlignment.TopLeft),
            (new AttentionShape(2, 4, 2, 150, 70, 16, 16), br),
            (new AttentionShape(1, 2, 2, 64, 300, 256, 256), br),
            (AttentionShape.Self(1, 1, 65, 3), br),
        };
        if (large)
        {
            list.Add((new AttentionShape(1, 4, 1, 8192, 8192, 64, 64), br));
            list.Add((new AttentionShape(1, 2, 2, 2048, 2048, 256, 256), br));
            list.Add((new AttentionShape(1, 8, 2, 1, 8192, 128, 128), br));
        }
        return list;
    }
}
