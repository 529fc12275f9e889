using System.Globalization;
using Managed.Kernels.Registry;

namespace Managed.Cli;

/// <summary>
/// Text to <see cref="VariantSpec"/>, at the front end's edge: the canonical names
/// (<see cref="VariantSpec.Name"/>) and a few documented spellings. A name is an optional
/// score, an optional normalizer and an optional mask, in that order, joined by '-' or '+';
/// "full" is no part at all. Every mistake is a <see cref="UsageException"/> naming the
/// option, the text, where it went wrong and what was expected there.
/// </summary>
internal static class VariantSpecParser
{
    /// <summary>The forms, as the help and the errors spell them.</summary>
    public const string Forms = "[SCORE-][NORMALIZER-][MASK] or full; SCORE: alibi, alibi-hH, "
        + "softcap-C, temperature-T; NORMALIZER: sigmoid-bB, softplus-lssaL[-pP], "
        + "clipped-Z-G (gamma = -G); MASK: causal, window-lL-rR, causal-window-W, "
        + "sinkS-windowW (or sinksS+windowW), prefix-lm-P, doc-L-causal";

    /// <summary>Every spec in a comma-separated list (each as <see cref="Parse"/>).</summary>
    public static VariantSpec[] ParseList(string option, string text) =>
        text.Split(',').Select(item => Parse(option, item)).ToArray();

    /// <summary>The spec that <paramref name="text"/> names; <paramref name="option"/> is the
    /// option the text came with, for the error.</summary>
    public static VariantSpec Parse(string option, string text)
    {
        var reader = new Reader(option, text);
        if (text == "full") return new(MaskSpec.None);
        if (text.Length == 0)
            throw new UsageException($"{option} '': an empty variant spec (expected {Forms})");
        var score = reader.Score();
        var normalizer = reader.Normalizer();
        var mask = reader.Mask();
        if (!reader.AtEnd)
            throw reader.Error(score.Kind == ScoreKind.None
                && normalizer.Kind == NormalizerKind.Softmax && mask.Kind == MaskKind.None
                ? "not a variant" : "unexpected text", $"a variant spec: {Forms}");
        try
        {
            return new(mask, score, normalizer);
        }
        catch (ArgumentException e)
        {
            throw Refused(option, text, e);
        }
    }

    /// <summary>A spec factory's refusal as a usage error, on one line.</summary>
    private static UsageException Refused(string option, string text, ArgumentException e) =>
        new($"{option} '{text}': "
            + e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal));

    /// <summary>A cursor over the text; each part reader consumes its part and the separator
    /// after it, or nothing when the text does not start with that part.</summary>
    private sealed class Reader(string option, string text)
    {
        private int _at;

        public bool AtEnd => _at == text.Length;

        public ScoreSpec Score()
        {
            if (Word("alibi"))
            {
                if (Word("-h"))
                    return Separated(Checked(() => ScoreSpec.Alibi(Int("ALiBi heads"))));
                return Separated(ScoreSpec.Alibi());
            }
            if (Word("softcap-"))
                return Separated(Checked(() => ScoreSpec.Softcap(Float("the cap", false))));
            if (Word("temperature-"))
                return Separated(Checked(() =>
                    ScoreSpec.FixedTemperature(Float("the temperature", false))));
            return ScoreSpec.None;
        }

        public NormalizerSpec Normalizer()
        {
            if (Word("sigmoid-b"))
                return Separated(Checked(() => NormalizerSpec.Sigmoid(Float("the bias", true))));
            if (Word("softplus-lssa"))
            {
                int train = Int("the training length");
                float power = PowerFollows() && Word("-p") ? Float("the power", false) : 1f;
                return Separated(Checked(() => NormalizerSpec.Softplus(train, power)));
            }
            if (Word("clipped-"))
            {
                float zeta = Float("zeta", false);
                Expect("-", "'-' and then -gamma");
                float gamma = -Float("-gamma", false);
                return Separated(Checked(() => NormalizerSpec.ClippedSoftmax(zeta, gamma)));
            }
            return NormalizerSpec.Softmax;
        }

        public MaskSpec Mask()
        {
            if (Word("causal-window-"))
                return Checked(() => MaskSpec.CausalWindow(Int("the window")));
            if (Word("causal")) return MaskSpec.Causal;
            if (Word("window-l"))
            {
                int left = Int("the left extent");
                Expect("-r", "'-rR' (keys after the query)");
                return Checked(() => MaskSpec.SlidingWindow(left, Int("the right extent")));
            }
            if (Word("sinks") || Word("sink"))
            {
                int sinks = Int("the sinks");
                if (!Word("-window") && !Word("+window"))
                    throw Error("expected the window", "'-windowW' or '+windowW'");
                return Checked(() => MaskSpec.SinkWindow(sinks, Int("the window")));
            }
            if (Word("prefix-lm-")) return Checked(() => MaskSpec.PrefixLm(Int("the prefix")));
            if (Word("doc-"))
            {
                int length = Int("the document length");
                Expect("-causal", "'-causal'");
                return Checked(() => MaskSpec.CausalDocuments(length));
            }
            return MaskSpec.None;
        }

        public UsageException Error(string what, string expected) => new(
            $"{option} '{text}': {what} at '{text[_at..]}' (expected {expected})");

        private T Separated<T>(T part)
        {
            if (AtEnd) return part;
            if (!Word("-") && !Word("+"))
                throw Error("no separator", "'-' or '+' before the next part");
            if (AtEnd) throw Error("nothing after the separator", "a normalizer or a mask");
            return part;
        }

        private T Checked<T>(Func<T> make)
        {
            try
            {
                return make();
            }
            catch (ArgumentException e)
            {
                throw Refused(option, text, e);
            }
        }

        // "-p" then a digit: softplus's power, not a mask such as prefix-lm-P.
        private bool PowerFollows() => _at + 2 < text.Length && text[_at] == '-'
            && text[_at + 1] == 'p' && char.IsAsciiDigit(text[_at + 2]);

        private bool Word(string word)
        {
            if (!text.AsSpan(_at).StartsWith(word, StringComparison.Ordinal)) return false;
            _at += word.Length;
            return true;
        }

        private void Expect(string word, string expected)
        {
            if (!Word(word)) throw Error("missing text", expected);
        }

        private int Int(string what)
        {
            int start = _at;
            while (_at < text.Length && char.IsAsciiDigit(text[_at])) _at++;
            if (int.TryParse(text.AsSpan(start, _at - start), NumberStyles.None,
                    CultureInfo.InvariantCulture, out int value))
                return value;
            _at = start;
            throw Error($"{what} is not a whole number", $"{what} as digits, e.g. 32");
        }

        // Digits, '.', an exponent (E, sign, digits); a leading '-' where signed.
        private float Float(string what, bool signed)
        {
            int start = _at;
            if (signed && _at < text.Length && text[_at] == '-') _at++;
            while (_at < text.Length && (char.IsAsciiDigit(text[_at]) || text[_at] == '.')) _at++;
            if (_at > start && _at + 1 < text.Length && text[_at] is 'E' or 'e'
                && (char.IsAsciiDigit(text[_at + 1])
                    || text[_at + 1] is '+' or '-' && _at + 2 < text.Length
                    && char.IsAsciiDigit(text[_at + 2])))
            {
                _at += 2;
                while (_at < text.Length && char.IsAsciiDigit(text[_at])) _at++;
            }
            if (float.TryParse(text.AsSpan(start, _at - start),
                    NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint
                    | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out float value)
                && float.IsFinite(value))
                return value;
            _at = start;
            throw Error($"{what} is not a finite number",
                $"{what} as a decimal number, e.g. {(signed ? "-2 or 0.5" : "30 or 0.5")}");
        }
    }
}
