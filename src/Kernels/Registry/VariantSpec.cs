using System.Globalization;
using Managed.Kernels.Variants;

namespace Managed.Kernels.Registry;

/// <summary>The masks a <see cref="VariantSpec"/> can describe.</summary>
public enum MaskKind : byte
{
    /// <summary>Every key (<see cref="NoMask"/>).</summary>
    None,

    /// <summary>k &lt;= q (<see cref="CausalMask"/>).</summary>
    Causal,

    /// <summary>q - left &lt;= k &lt;= q + right (<see cref="SlidingWindowMask"/>).</summary>
    SlidingWindow,

    /// <summary>The last window keys up to q (<see cref="SlidingWindowMask.Causal"/>).</summary>
    CausalWindow,

    /// <summary>Attention sinks plus a causal window (<see cref="SinkWindowMask"/>).</summary>
    SinkWindow,

    /// <summary>A bidirectional prefix, causal after it (<see cref="PrefixLmMask"/>).</summary>
    PrefixLm,

    /// <summary>Causal inside documents of one fixed length
    /// (<see cref="And{TA, TB}"/> of <see cref="CausalMask"/> and
    /// <see cref="FixedDocumentMask"/>).</summary>
    CausalDocuments,
}

/// <summary>The score modifiers a <see cref="VariantSpec"/> can describe.</summary>
public enum ScoreKind : byte
{
    /// <summary>The scaled logit unchanged (<see cref="NoScore"/>).</summary>
    None,

    /// <summary>ALiBi linear biases (<see cref="AlibiScore"/>).</summary>
    Alibi,

    /// <summary>Logit soft-capping (<see cref="SoftcapScore"/>).</summary>
    Softcap,

    /// <summary>A fixed temperature (<see cref="TemperatureScore"/>).</summary>
    Temperature,
}

/// <summary>The normalizers a <see cref="VariantSpec"/> can describe.</summary>
public enum NormalizerKind : byte
{
    /// <summary>Softmax (<see cref="SoftmaxNormalizer"/>).</summary>
    Softmax,

    /// <summary>Sigmoid attention with a bias (<see cref="SigmoidNormalizer"/>).</summary>
    Sigmoid,

    /// <summary>Length-scaled softplus attention (<see cref="SoftplusNormalizer"/>).</summary>
    Softplus,

    /// <summary>Clipped softmax (<see cref="ClippedSoftmaxNormalizer"/>).</summary>
    ClippedSoftmax,
}

/// <summary>
/// The mask part of a <see cref="VariantSpec"/>: a kind and its sizes, made only by the
/// factories (which check the numbers); the sizes a kind does not use are 0.
/// default is <see cref="None"/>.
/// </summary>
public readonly record struct MaskSpec
{
    private MaskSpec(MaskKind kind, int left = 0, int right = 0, int window = 0, int sinks = 0,
        int prefix = 0, int documentLength = 0) =>
        (Kind, Left, Right, Window, Sinks, Prefix, DocumentLength) =
            (kind, left, right, window, sinks, prefix, documentLength);

    /// <summary>Which mask.</summary>
    public MaskKind Kind { get; }

    /// <summary>Keys before the query (<see cref="MaskKind.SlidingWindow"/>).</summary>
    public int Left { get; }

    /// <summary>Keys after the query (<see cref="MaskKind.SlidingWindow"/>).</summary>
    public int Right { get; }

    /// <summary>Keys of the window (<see cref="MaskKind.CausalWindow"/>,
    /// <see cref="MaskKind.SinkWindow"/>).</summary>
    public int Window { get; }

    /// <summary>Sink keys (<see cref="MaskKind.SinkWindow"/>).</summary>
    public int Sinks { get; }

    /// <summary>Keys of the prefix (<see cref="MaskKind.PrefixLm"/>).</summary>
    public int Prefix { get; }

    /// <summary>Tokens per document (<see cref="MaskKind.CausalDocuments"/>).</summary>
    public int DocumentLength { get; }

    /// <summary>No mask.</summary>
    public static MaskSpec None => default;

    /// <summary>The causal mask.</summary>
    public static MaskSpec Causal => new(MaskKind.Causal);

    /// <summary>q - <paramref name="left"/> &lt;= k &lt;= q + <paramref name="right"/>, both
    /// &gt;= 0.</summary>
    public static MaskSpec SlidingWindow(int left, int right) => new(MaskKind.SlidingWindow,
        left: SpecCheck.AtLeast(0, left, "sliding window", "left"),
        right: SpecCheck.AtLeast(0, right, "sliding window", "right"));

    /// <summary>The last <paramref name="window"/> &gt;= 1 keys up to the query.</summary>
    public static MaskSpec CausalWindow(int window) => new(MaskKind.CausalWindow,
        window: SpecCheck.AtLeast(1, window, "causal window", "window"));

    /// <summary><paramref name="sinks"/> &gt;= 0 sink keys and a causal window of
    /// <paramref name="window"/> &gt;= 1 keys.</summary>
    public static MaskSpec SinkWindow(int sinks, int window) => new(MaskKind.SinkWindow,
        sinks: SpecCheck.AtLeast(0, sinks, "sink window", "sinks"),
        window: SpecCheck.AtLeast(1, window, "sink window", "window"));

    /// <summary>A bidirectional prefix of <paramref name="prefix"/> &gt;= 0 keys, causal
    /// after it.</summary>
    public static MaskSpec PrefixLm(int prefix) => new(MaskKind.PrefixLm,
        prefix: SpecCheck.AtLeast(0, prefix, "prefix LM", "prefix"));

    /// <summary>Causal inside documents of <paramref name="length"/> &gt;= 1 tokens.</summary>
    public static MaskSpec CausalDocuments(int length) => new(MaskKind.CausalDocuments,
        documentLength: SpecCheck.AtLeast(1, length, "causal documents", "length"));

    /// <summary>The mask's part of <see cref="VariantSpec.Name"/>; empty for
    /// <see cref="MaskKind.None"/>.</summary>
    public string Name => Kind switch
    {
        MaskKind.None => "",
        MaskKind.Causal => "causal",
        MaskKind.SlidingWindow => $"window-l{Left}-r{Right}",
        MaskKind.CausalWindow => $"causal-window-{Window}",
        MaskKind.SinkWindow => $"sink{Sinks}-window{Window}",
        MaskKind.PrefixLm => $"prefix-lm-{Prefix}",
        MaskKind.CausalDocuments => $"doc-{DocumentLength}-causal",
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), "Not a mask kind."),
    };
}

/// <summary>
/// The score part of a <see cref="VariantSpec"/>: a kind and its numbers, made only by the
/// factories (which check them); unused numbers are 0. default is <see cref="None"/>.
/// </summary>
public readonly record struct ScoreSpec
{
    private ScoreSpec(ScoreKind kind, int heads = 0, float cap = 0f, float temperature = 0f) =>
        (Kind, Heads, Cap, Temperature) = (kind, heads, cap, temperature);

    /// <summary>Which score modifier.</summary>
    public ScoreKind Kind { get; }

    /// <summary>ALiBi's head count; 0 takes it from the call's shape at
    /// <see cref="VariantSpec.Bind"/>.</summary>
    public int Heads { get; }

    /// <summary>The soft cap (<see cref="ScoreKind.Softcap"/>).</summary>
    public float Cap { get; }

    /// <summary>The temperature (<see cref="ScoreKind.Temperature"/>).</summary>
    public float Temperature { get; }

    /// <summary>The logit unchanged.</summary>
    public static ScoreSpec None => default;

    /// <summary>ALiBi with slopes for the heads of the call (given at
    /// <see cref="VariantSpec.Bind"/>).</summary>
    public static ScoreSpec Alibi() => new(ScoreKind.Alibi);

    /// <summary>ALiBi with slopes for <paramref name="heads"/> &gt;= 1 heads, whatever the
    /// call's head count.</summary>
    public static ScoreSpec Alibi(int heads) =>
        new(ScoreKind.Alibi, heads: SpecCheck.AtLeast(1, heads, "ALiBi", "heads"));

    /// <summary>cap * tanh(s / cap), <paramref name="cap"/> finite and &gt; 0 with 1 / cap
    /// finite.</summary>
    public static ScoreSpec Softcap(float cap) =>
        new(ScoreKind.Softcap, cap: SpecCheck.PositiveWithFiniteInverse(cap, "softcap", "cap"));

    /// <summary>s / <paramref name="temperature"/>, finite and &gt; 0 with 1 / T
    /// finite.</summary>
    public static ScoreSpec FixedTemperature(float temperature) => new(ScoreKind.Temperature,
        temperature: SpecCheck.PositiveWithFiniteInverse(temperature, "temperature",
            "temperature"));

    /// <summary>The score's part of <see cref="VariantSpec.Name"/>; empty for
    /// <see cref="ScoreKind.None"/>.</summary>
    public string Name => Kind switch
    {
        ScoreKind.None => "",
        ScoreKind.Alibi => Heads == 0 ? "alibi" : $"alibi-h{Heads}",
        ScoreKind.Softcap => $"softcap-{SpecCheck.Format(Cap)}",
        ScoreKind.Temperature => $"temperature-{SpecCheck.Format(Temperature)}",
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), "Not a score kind."),
    };
}

/// <summary>
/// The normalizer part of a <see cref="VariantSpec"/>: a kind and its numbers, made only by
/// the factories (which check them); unused numbers are 0. default is
/// <see cref="Softmax"/>.
/// </summary>
public readonly record struct NormalizerSpec
{
    private NormalizerSpec(NormalizerKind kind, float bias = 0f, int trainLength = 0,
        float power = 0f, float zeta = 0f, float gamma = 0f) =>
        (Kind, Bias, TrainLength, Power, Zeta, Gamma) =
            (kind, bias, trainLength, power, zeta, gamma);

    /// <summary>Which normalizer.</summary>
    public NormalizerKind Kind { get; }

    /// <summary>The sigmoid's bias (<see cref="NormalizerKind.Sigmoid"/>).</summary>
    public float Bias { get; }

    /// <summary>The training length (<see cref="NormalizerKind.Softplus"/>).</summary>
    public int TrainLength { get; }

    /// <summary>The re-weighting power (<see cref="NormalizerKind.Softplus"/>).</summary>
    public float Power { get; }

    /// <summary>The stretch zeta (<see cref="NormalizerKind.ClippedSoftmax"/>).</summary>
    public float Zeta { get; }

    /// <summary>The stretch gamma (<see cref="NormalizerKind.ClippedSoftmax"/>).</summary>
    public float Gamma { get; }

    /// <summary>Softmax.</summary>
    public static NormalizerSpec Softmax => default;

    /// <summary>sigmoid(s + <paramref name="bias"/>), the bias finite.</summary>
    public static NormalizerSpec Sigmoid(float bias) => new(NormalizerKind.Sigmoid,
        bias: float.IsFinite(bias) ? bias : throw new ArgumentOutOfRangeException(nameof(bias),
            $"sigmoid: the bias must be finite, got {SpecCheck.Format(bias)}."));

    /// <summary>Softplus attention trained at <paramref name="trainLength"/> &gt;= 2 tokens,
    /// power <paramref name="power"/> finite and &gt;= 1.</summary>
    public static NormalizerSpec Softplus(int trainLength, float power = 1f) =>
        new(NormalizerKind.Softplus,
            trainLength: SpecCheck.AtLeast(2, trainLength, "softplus", "training length"),
            power: power >= 1f && float.IsFinite(power) ? power
                : throw new ArgumentOutOfRangeException(nameof(power),
                    "softplus: the power must be finite and >= 1, got "
                    + $"{SpecCheck.Format(power)}."));

    /// <summary>Clipped softmax, <paramref name="zeta"/> finite and &gt;= 1,
    /// <paramref name="gamma"/> finite and &lt;= 0.</summary>
    public static NormalizerSpec ClippedSoftmax(float zeta, float gamma) =>
        new(NormalizerKind.ClippedSoftmax,
            zeta: zeta >= 1f && float.IsFinite(zeta) ? zeta
                : throw new ArgumentOutOfRangeException(nameof(zeta),
                    "clipped softmax: zeta must be finite and >= 1, got "
                    + $"{SpecCheck.Format(zeta)}."),
            gamma: gamma <= 0f && float.IsFinite(gamma) ? gamma
                : throw new ArgumentOutOfRangeException(nameof(gamma),
                    "clipped softmax: gamma must be finite and <= 0, got "
                    + $"{SpecCheck.Format(gamma)}."));

    /// <summary>The normalizer's part of <see cref="VariantSpec.Name"/>; empty for
    /// <see cref="NormalizerKind.Softmax"/>. Clipped softmax writes -gamma (gamma &lt;= 0).
    /// </summary>
    public string Name => Kind switch
    {
        NormalizerKind.Softmax => "",
        NormalizerKind.Sigmoid => $"sigmoid-b{SpecCheck.Format(Bias)}",
        NormalizerKind.Softplus => Power == 1f ? $"softplus-lssa{TrainLength}"
            : $"softplus-lssa{TrainLength}-p{SpecCheck.Format(Power)}",
        NormalizerKind.ClippedSoftmax =>
            $"clipped-{SpecCheck.Format(Zeta)}-{SpecCheck.Format(Gamma == 0f ? 0f : -Gamma)}",
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), "Not a normalizer kind."),
    };
}

/// <summary>
/// One attention variant described by enums and numbers: a mask, a score modifier and a
/// normalizer (<see cref="MaskSpec"/>, <see cref="ScoreSpec"/>, <see cref="NormalizerSpec"/>,
/// each checked when made). <see cref="Bind"/> closes it into the generic
/// <see cref="AttentionVariant{TScore, TMask, TNorm}"/> of the combination; <see cref="Name"/>
/// is its canonical name (score, then normalizer, then mask, joined by '-'; "full" when all
/// three are plain). Text is parsed into a spec only at the front end's edge.
/// </summary>
/// <param name="Mask">The mask part.</param>
/// <param name="Score">The score part (default: none).</param>
/// <param name="Normalizer">The normalizer part (default: softmax).</param>
public readonly record struct VariantSpec(MaskSpec Mask, ScoreSpec Score = default,
    NormalizerSpec Normalizer = default)
{
    /// <summary>The canonical name, e.g. "causal", "softcap-30-causal", "sink4-window512",
    /// "sigmoid-b-2-causal", "full".</summary>
    public string Name
    {
        get
        {
            string[] parts = [Score.Name, Normalizer.Name, Mask.Name];
            string name = string.Join('-', parts.Where(p => p.Length > 0));
            return name.Length == 0 ? "full" : name;
        }
    }

    /// <summary>The variant with its operator structs, named <see cref="Name"/>.
    /// <paramref name="heads"/> &gt;= 1 is the call's head count, used by ALiBi when the spec
    /// gives none. Softmax specs give <see cref="AttentionVariant{TScore, TMask}"/>.</summary>
    public IAttentionVariant Bind(int heads)
    {
        SpecCheck.AtLeast(1, heads, "binding a variant", "heads");
        return Score.Kind switch
        {
            ScoreKind.None => WithMask(default(NoScore)),
            ScoreKind.Alibi => WithMask(new AlibiScore(Score.Heads > 0 ? Score.Heads : heads)),
            ScoreKind.Softcap => WithMask(new SoftcapScore(Score.Cap)),
            ScoreKind.Temperature => WithMask(new TemperatureScore(Score.Temperature)),
            _ => throw new ArgumentOutOfRangeException(nameof(Score), Score.Kind,
                "Not a score kind."),
        };
    }

    /// <inheritdoc/>
    public override string ToString() => Name;

    private IAttentionVariant WithMask<TScore>(TScore score)
        where TScore : struct, IScoreModifier => Mask.Kind switch
        {
            MaskKind.None => WithNormalizer(score, default(NoMask)),
            MaskKind.Causal => WithNormalizer(score, default(CausalMask)),
            MaskKind.SlidingWindow =>
                WithNormalizer(score, new SlidingWindowMask(Mask.Left, Mask.Right)),
            MaskKind.CausalWindow =>
                WithNormalizer(score, SlidingWindowMask.Causal(Mask.Window)),
            MaskKind.SinkWindow =>
                WithNormalizer(score, new SinkWindowMask(Mask.Sinks, Mask.Window)),
            MaskKind.PrefixLm => WithNormalizer(score, new PrefixLmMask(Mask.Prefix)),
            MaskKind.CausalDocuments => WithNormalizer(score,
                new And<CausalMask, FixedDocumentMask>(default, new(Mask.DocumentLength))),
            _ => throw new ArgumentOutOfRangeException(nameof(Mask), Mask.Kind,
                "Not a mask kind."),
        };

    private IAttentionVariant WithNormalizer<TScore, TMask>(TScore score, TMask mask)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate => Normalizer.Kind switch
        {
            NormalizerKind.Softmax => new AttentionVariant<TScore, TMask>(Name, score, mask),
            NormalizerKind.Sigmoid => Closed(score, mask, new SigmoidNormalizer(Normalizer.Bias)),
            NormalizerKind.Softplus => Closed(score, mask,
                new SoftplusNormalizer(Normalizer.TrainLength, Normalizer.Power)),
            NormalizerKind.ClippedSoftmax => Closed(score, mask,
                new ClippedSoftmaxNormalizer(Normalizer.Zeta, Normalizer.Gamma)),
            _ => throw new ArgumentOutOfRangeException(nameof(Normalizer), Normalizer.Kind,
                "Not a normalizer kind."),
        };

    private AttentionVariant<TScore, TMask, TNorm> Closed<TScore, TMask, TNorm>(TScore score,
        TMask mask, TNorm norm)
        where TScore : struct, IScoreModifier
        where TMask : struct, IMaskPredicate
        where TNorm : struct, INormalizer => new(Name, score, mask, norm);
}

/// <summary>The number checks and formatting of the spec parts.</summary>
internal static class SpecCheck
{
    /// <summary><paramref name="value"/> when &gt;= <paramref name="min"/>, else an
    /// <see cref="ArgumentOutOfRangeException"/> naming the part and the number.</summary>
    public static int AtLeast(int min, int value, string part, string number) =>
        value >= min ? value : throw new ArgumentOutOfRangeException(number,
            $"{part}: {number} must be >= {min}, got {value}.");

    /// <summary><paramref name="value"/> when finite and &gt; 0 with a finite inverse.</summary>
    public static float PositiveWithFiniteInverse(float value, string part, string number) =>
        value > 0f && float.IsFinite(value) && float.IsFinite(1f / value) ? value
            : throw new ArgumentOutOfRangeException(number,
                $"{part}: the {number} must be finite and > 0 (with 1 / {number} finite), "
                + $"got {Format(value)}.");

    /// <summary>The shortest invariant text that parses back to <paramref name="value"/>.
    /// </summary>
    public static string Format(float value) => value.ToString(CultureInfo.InvariantCulture);
}
