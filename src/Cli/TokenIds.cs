using System.Globalization;
using Managed.Models;

namespace Managed.Cli;

/// <summary>Token id files: whitespace-separated decimal ids.</summary>
internal static class TokenIds
{
    /// <summary>The ids in <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">A word is not an id, or there is none.
    /// </exception>
    public static int[] Read(string path)
    {
        var words = File.ReadAllText(path).Split((char[]?)null,
            StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0)
            throw new InvalidDataException($"{path} holds no token id (expected "
                + "whitespace-separated integers >= 0)");
        var ids = new int[words.Length];
        for (int i = 0; i < words.Length; i++)
            if (!int.TryParse(words[i], NumberStyles.None, CultureInfo.InvariantCulture,
                    out ids[i]))
                throw new InvalidDataException($"{path}: word {i + 1}, '{words[i]}', is not a "
                    + "token id (expected whitespace-separated integers >= 0)");
        return ids;
    }

    /// <summary>Throws when an id of <paramref name="ids"/> (from <paramref name="source"/>)
    /// is not below <paramref name="model"/>'s vocabulary, or there are more than a sequence
    /// holds.</summary>
    public static void Check(int[] ids, ICausalModel model, string source)
    {
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] >= model.VocabSize)
                throw new InvalidDataException($"{source}: token {i + 1}, id {ids[i]}, is not "
                    + $"in the model's vocabulary (ids 0 to {model.VocabSize - 1})");
        if (ids.Length > model.MaxLength)
            throw new InvalidDataException($"{source}: {ids.Length} tokens; the model holds "
                + $"at most {model.MaxLength} per sequence");
    }
}
