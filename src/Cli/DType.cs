using Half = System.Half;

namespace Managed.Cli;

/// <summary>The storage type of Q, K and V (of the KV cache for decode) that --dtype names:
/// the kernels widen it to float on load, or take fp16/bf16 on the tensor cores of a CUDA
/// device.</summary>
internal enum DType
{
    /// <summary>fp32.</summary>
    Float,

    /// <summary>IEEE fp16, <see cref="System.Half"/>.</summary>
    Half,

    /// <summary>bf16, <c>Managed.Kernels.Layouts.BFloat16</c>.</summary>
    BFloat16,
}

/// <summary>Names and parsing of <see cref="DType"/>, and rounding to each type.</summary>
internal static class DTypeOps
{
    /// <summary>What --dtype accepts, as the help and the errors spell it.</summary>
    public const string Expected =
        "float, half or bfloat16 (aliases fp32, fp16, bf16), comma-separated";

    /// <summary>The canonical name: float, half or bfloat16 (CSV columns, summary lines).
    /// </summary>
    public static string Name(this DType type) => type switch
    {
        DType.Half => "half",
        DType.BFloat16 => "bfloat16",
        _ => "float",
    };

    /// <summary>A comma-separated list of types, each once, in the order given.</summary>
    public static DType[] Parse(string option, string s)
    {
        var types = new List<DType>();
        foreach (string item in s.Split(','))
        {
            DType type = item.ToLowerInvariant() switch
            {
                "float" or "fp32" or "float32" => DType.Float,
                "half" or "fp16" or "float16" => DType.Half,
                "bfloat16" or "bf16" => DType.BFloat16,
                _ => throw new UsageException($"{option} '{s}': '{item}' is not a dtype "
                    + $"(expected {Expected})"),
            };
            if (!types.Contains(type)) types.Add(type);
        }
        return [.. types];
    }

    /// <summary>Round to nearest even fp16.</summary>
    public static Half ToHalf(float x) => (Half)x;

    /// <summary>Each element rounded by <paramref name="narrow"/>.</summary>
    public static T[] Narrow<T>(float[] x, Func<float, T> narrow)
    {
        var a = new T[x.Length];
        for (long i = 0; i < a.LongLength; i++) a[i] = narrow(x[i]);
        return a;
    }

    /// <summary>Each element widened by <paramref name="widen"/> (exact for the three
    /// types).</summary>
    public static float[] Widen<T>(T[] x, Func<T, float> widen)
    {
        var a = new float[x.Length];
        for (long i = 0; i < a.LongLength; i++) a[i] = widen(x[i]);
        return a;
    }
}
