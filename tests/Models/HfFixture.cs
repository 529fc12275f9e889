using System.Buffers.Binary;
using System.Globalization;
using Managed.Tests.Docs;

namespace Managed.Tests.Models;

/// <summary>One Hugging Face parity fixture of tests/Fixtures/hf (tools/model/make-fixtures.py):
/// input ids, HF's fp64 logits [tokens, vocab] and its 32 greedy new ids.</summary>
internal sealed record HfFixture(string Name, string Directory, int[] Ids, double[] Logits,
    int[] Greedy)
{
    public int Vocab => Logits.Length / Ids.Length;

    public static string Root => Path.Combine(ReadmeSnippetTests.RepoRoot(), "tests", "Fixtures",
        "hf");

    public static HfFixture Load(string name)
    {
        string dir = Path.Combine(Root, name);
        int[] Ints(string file) => File.ReadAllText(Path.Combine(dir, file))
            .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var bytes = File.ReadAllBytes(Path.Combine(dir, "logits.f64"));
        var logits = new double[bytes.Length / 8];
        for (int i = 0; i < logits.Length; i++)
            logits[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(i * 8));
        return new HfFixture(name, dir, Ints("ids.txt"), logits, Ints("greedy.txt"));
    }

    /// <summary>max over elements of |actual − ref| − rtol·|ref| (≤ atol passes), and the
    /// plain max |actual − ref|.</summary>
    public (double Excess, double MaxAbs) Compare(ReadOnlySpan<float> actual, double rtol)
    {
        double excess = double.NegativeInfinity, maxAbs = 0;
        for (int i = 0; i < Logits.Length; i++)
        {
            double error = Math.Abs(actual[i] - Logits[i]);
            maxAbs = Math.Max(maxAbs, error);
            excess = Math.Max(excess, error - rtol * Math.Abs(Logits[i]));
        }
        return (excess, maxAbs);
    }

    public static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++)
            if (row[i] > row[best]) best = i;
        return best;
    }
}
