using Managed.Models;
using Xunit;

namespace Managed.Tests.Models;

/// <summary>RoPE frequencies against the formulas of transformers' modeling_rope_utils,
/// written out here in double precision without calling the library.</summary>
public sealed class RopeTests
{
    private static void Close(double expected, double actual, double relative = 1e-12)
    {
        double error = Math.Abs(expected - actual);
        Assert.True(error <= relative * Math.Abs(expected) + 1e-300,
            $"expected {expected:R}, got {actual:R} (error {error:E2})");
    }

    private static double[] Base(double theta, int dim) =>
        Enumerable.Range(0, dim / 2).Select(i => Math.Pow(theta, -(2.0 * i) / dim)).ToArray();

    [Theory]
    [InlineData(10000.0, 64)]
    [InlineData(500000.0, 128)]
    [InlineData(1e6, 8)]
    public void Default(double theta, int dim)
    {
        var rope = new RopeParameters
        {
            Type = RopeType.Default, Theta = theta, Dim = dim, MaxPositionEmbeddings = 2048,
        };
        var inv = rope.InverseFrequencies();
        var expected = Base(theta, dim);
        Assert.Equal(dim / 2, inv.Length);
        for (int i = 0; i < inv.Length; i++)
            Close(expected[i], inv[i]);
        Assert.Equal(1.0, rope.AttentionScaling);
    }

    [Fact]
    public void Linear()
    {
        var rope = new RopeParameters
        {
            Type = RopeType.Linear, Theta = 10000, Dim = 32, MaxPositionEmbeddings = 2048,
            Factor = 4,
        };
        var inv = rope.InverseFrequencies(100000);     // the length does not matter
        var expected = Base(10000, 32);
        for (int i = 0; i < inv.Length; i++)
            Close(expected[i] / 4, inv[i]);
        Assert.Equal(1.0, rope.AttentionScaling);
    }

    [Fact]
    public void DynamicNtkDependsOnTheSequenceLength()
    {
        const int Dim = 64, Max = 2048;
        const double Factor = 2, Theta = 10000;
        var rope = new RopeParameters
        {
            Type = RopeType.Dynamic, Theta = Theta, Dim = Dim, MaxPositionEmbeddings = Max,
            Factor = Factor,
        };
        foreach (int length in new[] { 0, 100, Max, Max + 1, 3 * Max, 10 * Max })
        {
            // base' = base·(factor·L/Lmax − (factor − 1))^(d/(d−2)), L = max(length, Lmax).
            double l = Math.Max(length, Max);
            double scaledBase = Theta * Math.Pow(Factor * l / Max - (Factor - 1),
                Dim / (Dim - 2.0));
            var expected = Base(scaledBase, Dim);
            var inv = rope.InverseFrequencies(length);
            for (int i = 0; i < inv.Length; i++)
                Close(expected[i], inv[i]);
        }
        // Up to Lmax it is the default RoPE.
        var plain = Base(Theta, Dim);
        var short_ = rope.InverseFrequencies(Max);
        for (int i = 0; i < plain.Length; i++)
            Close(plain[i], short_[i]);
    }

    [Theory]
    [InlineData(4.0, 32, 1, 4096, true, null, null, null)]
    [InlineData(8.0, 16, 2, 8192, false, null, null, null)]
    [InlineData(40.0, 32, 1, 4096, true, 0.707, 0.707, null)]
    [InlineData(40.0, 32, 1, 4096, true, 1.0, 0.5, null)]
    [InlineData(16.0, 32, 1, 2048, true, null, null, 1.25)]
    [InlineData(1.0, 32, 1, 2048, true, null, null, null)]
    public void Yarn(double factor, double betaFast, double betaSlow, int original,
        bool truncate, double? mscale, double? mscaleAllDim, double? attentionFactor)
    {
        const int Dim = 128;
        const double Theta = 10000;
        var rope = new RopeParameters
        {
            Type = RopeType.Yarn, Theta = Theta, Dim = Dim, MaxPositionEmbeddings = 131072,
            Factor = factor, OriginalMaxPositionEmbeddings = original, BetaFast = betaFast,
            BetaSlow = betaSlow, Truncate = truncate, Mscale = mscale,
            MscaleAllDim = mscaleAllDim, AttentionFactor = attentionFactor,
        };
        // Dimension index d(r) at which a frequency makes r full turns over the original
        // context: θ^(2d/D) = L / (2π r)  =>  d = D·ln(L / (2π r)) / (2 ln θ).
        double DimFor(double turns) => Dim / 2.0 * Math.Log(original / (2 * Math.PI * turns))
            / Math.Log(Theta);
        double low = DimFor(betaFast), high = DimFor(betaSlow);
        if (truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        low = Math.Max(low, 0);
        high = Math.Min(high, Dim - 1);
        if (high == low)
            high += 0.001;
        var extrapolated = Base(Theta, Dim);
        var inv = rope.InverseFrequencies();
        for (int i = 0; i < Dim / 2; i++)
        {
            // Weight of the interpolated (÷ factor) frequency: 0 below low, 1 above high.
            double w = Math.Min(1, Math.Max(0, (i - low) / (high - low)));
            double expected = w * extrapolated[i] / factor + (1 - w) * extrapolated[i];
            Close(expected, inv[i]);
        }
        static double M(double s, double m) => s <= 1 ? 1 : 1 + 0.1 * m * Math.Log(s);
        double scaling = attentionFactor
            ?? (mscale is { } a && mscaleAllDim is { } b ? M(factor, a) / M(factor, b)
                : M(factor, 1));
        Close(scaling, rope.AttentionScaling);
    }

    [Theory]
    [InlineData(500000.0, 64, 8.0, 1.0, 4.0, 8192)]
    [InlineData(500000.0, 128, 32.0, 1.0, 4.0, 8192)]
    [InlineData(10000.0, 64, 4.0, 2.0, 8.0, 2048)]
    public void Llama3(double theta, int dim, double factor, double lowFreq, double highFreq,
        int original)
    {
        var rope = new RopeParameters
        {
            Type = RopeType.Llama3, Theta = theta, Dim = dim, MaxPositionEmbeddings = 131072,
            Factor = factor, LowFreqFactor = lowFreq, HighFreqFactor = highFreq,
            OriginalMaxPositionEmbeddings = original,
        };
        var inv = rope.InverseFrequencies();
        var plain = Base(theta, dim);
        int scaled = 0, kept = 0, smoothed = 0;
        for (int i = 0; i < plain.Length; i++)
        {
            // Turns of the frequency over the original context decide: fewer than lowFreq
            // turns -> ÷ factor, more than highFreq -> kept, in between a linear blend in
            // the number of turns.
            double turns = original * plain[i] / (2 * Math.PI);
            double expected;
            if (turns > highFreq) { expected = plain[i]; kept++; }
            else if (turns < lowFreq) { expected = plain[i] / factor; scaled++; }
            else
            {
                double t = (turns - lowFreq) / (highFreq - lowFreq);
                expected = plain[i] / factor + t * (plain[i] - plain[i] / factor);
                smoothed++;
            }
            Close(expected, inv[i], 1e-11);
        }
        Assert.True(scaled > 0 && kept > 0, $"scaled {scaled}, kept {kept}, smooth {smoothed}");
        Assert.Equal(1.0, rope.AttentionScaling);
    }

    [Theory]
    [InlineData(RopePrecision.HuggingFace)]
    [InlineData(RopePrecision.Double)]
    public void TableAndRotateHalf(RopePrecision precision)
    {
        const int Dim = 16, Positions = 300, Heads = 3;
        var rope = new RopeParameters
        {
            Type = RopeType.Yarn, Theta = 10000, Dim = Dim, MaxPositionEmbeddings = 4096,
            Factor = 4, OriginalMaxPositionEmbeddings = 1024,
        };
        var table = rope.CreateTable(Positions, precision: precision);
        Assert.Equal(Positions, table.Positions);
        var inv = rope.InverseFrequencies();
        double scale = 1 + 0.1 * Math.Log(4);
        for (int p = 0; p < Positions; p++)
        {
            for (int i = 0; i < Dim / 2; i++)
            {
                // fp32 angles at position 300 lose ~1e-5 absolutely; the double table does not.
                double tolerance = precision == RopePrecision.Double ? 1e-7 : 4e-5;
                Assert.True(Math.Abs(Math.Cos(inv[i] * p) * scale - table.Cos(p)[i]) <= tolerance);
                Assert.True(Math.Abs(Math.Sin(inv[i] * p) * scale - table.Sin(p)[i]) <= tolerance);
            }
        }
        if (precision == RopePrecision.HuggingFace)
        {
            // Exactly the fp32 steps: fp32 angle, cos of it, times fp32 scaling.
            float angle = (float)inv[3] * 123f;
            Assert.Equal((float)Math.Cos(angle) * (float)scale, table.Cos(123)[3]);
        }

        // rotate_half on (heads, dim) against the pairwise rotation (i, i + dim/2) in double.
        var random = new Random(5);
        var row = new float[Heads * Dim];
        for (int i = 0; i < row.Length; i++)
            row[i] = random.NextSingle() * 2 - 1;
        var original = (float[])row.Clone();
        const int Position = 77;
        table.Apply(row, Position);
        for (int h = 0; h < Heads; h++)
        {
            for (int i = 0; i < Dim / 2; i++)
            {
                double a = original[h * Dim + i], b = original[h * Dim + i + Dim / 2];
                double c = table.Cos(Position)[i], s = table.Sin(Position)[i];
                Assert.True(Math.Abs(a * c - b * s - row[h * Dim + i]) < 1e-6);
                Assert.True(Math.Abs(b * c + a * s - row[h * Dim + i + Dim / 2]) < 1e-6);
            }
        }
        // Position 0 of a scale-1 RoPE is the identity.
        var identity = new RopeParameters
        {
            Type = RopeType.Default, Theta = 10000, Dim = Dim, MaxPositionEmbeddings = 8,
        }.CreateTable(1, precision: precision);
        var copy = (float[])original.Clone();
        identity.Apply(copy, 0);
        Assert.Equal(original, copy);
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Apply(row, Positions));
        Assert.Throws<ArgumentException>(() => table.Apply(new float[Dim + 2], 0));
    }

    [Fact]
    public void ConfigRopeFeedsTheFormulas()
    {
        // The Llama 3.2 config's RoPE, read from JSON, gives the llama3 frequencies.
        var c = ModelConfig.Parse("""
            {"model_type": "llama", "vocab_size": 8, "hidden_size": 64,
             "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1,
             "max_position_embeddings": 131072,
             "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32,
               "low_freq_factor": 1, "high_freq_factor": 4,
               "original_max_position_embeddings": 8192}}
            """);
        var inv = c.Layers[0].Rope!.InverseFrequencies();
        Assert.Equal(32, inv.Length);
        Close(1.0, inv[0]);
        double last = Math.Pow(500000.0, -62.0 / 64);    // 2π/last ≫ 8192: ÷ 32
        Close(last / 32, inv[31]);
    }
}
