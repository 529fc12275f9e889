using Managed.Tensors;

namespace Managed.Models;

/// <summary>The element types a safetensors header may name (the <c>dtype</c> strings of the
/// format, safetensors 0.6). Only <see cref="F32"/>, <see cref="F16"/> and <see cref="BF16"/>
/// can be read as weights; the others parse, and their bytes can be read raw.</summary>
public enum SafetensorsDType : byte
{
    /// <summary>"BOOL": one byte per element.</summary>
    BOOL,
    /// <summary>"F4": 4-bit float (e2m1), two elements per byte.</summary>
    F4,
    /// <summary>"F6_E2M3": 6-bit float, packed.</summary>
    F6_E2M3,
    /// <summary>"F6_E3M2": 6-bit float, packed.</summary>
    F6_E3M2,
    /// <summary>"U8": unsigned 8-bit integer.</summary>
    U8,
    /// <summary>"I8": signed 8-bit integer.</summary>
    I8,
    /// <summary>"F8_E5M2": 8-bit float.</summary>
    F8_E5M2,
    /// <summary>"F8_E4M3": 8-bit float.</summary>
    F8_E4M3,
    /// <summary>"F8_E8M0": 8-bit exponent-only scale.</summary>
    F8_E8M0,
    /// <summary>"I16": signed 16-bit integer.</summary>
    I16,
    /// <summary>"U16": unsigned 16-bit integer.</summary>
    U16,
    /// <summary>"F16": IEEE binary16 (<see cref="System.Half"/>); a weight type.</summary>
    F16,
    /// <summary>"BF16": bfloat16 (<see cref="Managed.Kernels.Layouts.BFloat16"/>); a weight
    /// type.</summary>
    BF16,
    /// <summary>"I32": signed 32-bit integer.</summary>
    I32,
    /// <summary>"U32": unsigned 32-bit integer.</summary>
    U32,
    /// <summary>"F32": IEEE binary32 (<see cref="float"/>); a weight type.</summary>
    F32,
    /// <summary>"C64": complex of two binary32.</summary>
    C64,
    /// <summary>"F64": IEEE binary64.</summary>
    F64,
    /// <summary>"I64": signed 64-bit integer.</summary>
    I64,
    /// <summary>"U64": unsigned 64-bit integer.</summary>
    U64,
}

/// <summary>Facts about <see cref="SafetensorsDType"/> values.</summary>
public static class SafetensorsDTypeExtensions
{
    /// <summary>Bits per element: 4 for F4, 6 for F6_*, else 8 × the byte size.</summary>
    public static int BitSize(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F4 => 4,
        SafetensorsDType.F6_E2M3 or SafetensorsDType.F6_E3M2 => 6,
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8
            or SafetensorsDType.F8_E5M2 or SafetensorsDType.F8_E4M3
            or SafetensorsDType.F8_E8M0 => 8,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16
            or SafetensorsDType.BF16 => 16,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 32,
        SafetensorsDType.C64 or SafetensorsDType.F64 or SafetensorsDType.I64
            or SafetensorsDType.U64 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>The tensor <see cref="DataType"/> of a weight dtype (F32, F16, BF16), or null
    /// for every other dtype.</summary>
    public static DataType? ToDataType(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F32 => DataType.Float32,
        SafetensorsDType.F16 => DataType.Float16,
        SafetensorsDType.BF16 => DataType.BFloat16,
        _ => null,
    };

    /// <summary>The header string of <paramref name="dtype"/> ("F32", "BF16", ...).</summary>
    public static string ToHeaderString(this SafetensorsDType dtype) => dtype.ToString();

    /// <summary>Parses a header dtype string; exact, case-sensitive, as the format spells it.
    /// </summary>
    public static bool TryParse(string text, out SafetensorsDType dtype)
    {
        foreach (var value in Values)
        {
            if (string.Equals(value.ToString(), text, StringComparison.Ordinal))
            {
                dtype = value;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    internal static readonly SafetensorsDType[] Values = Enum.GetValues<SafetensorsDType>();
}
