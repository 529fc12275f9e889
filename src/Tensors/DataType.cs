using Managed.Kernels.Layouts;

namespace Managed.Tensors;

/// <summary>Element type of an <see cref="NdTensor"/>.</summary>
public enum DataType : byte
{
    /// <summary>IEEE 754 binary32 (<see cref="float"/>).</summary>
    Float32 = 0,

    /// <summary>IEEE 754 binary16 (<see cref="System.Half"/>).</summary>
    Float16 = 1,

    /// <summary>bfloat16 (<see cref="BFloat16"/>): the top 16 bits of a binary32.</summary>
    BFloat16 = 2,
}

/// <summary>Facts about <see cref="DataType"/> values.</summary>
public static class DataTypeExtensions
{
    /// <summary>Bytes per element: Float32 = 4, Float16 = BFloat16 = 2.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined type.</exception>
    public static int SizeInBytes(this DataType dataType) => dataType switch
    {
        DataType.Float32 => sizeof(float),
        DataType.Float16 or DataType.BFloat16 => 2,
        _ => throw new ArgumentOutOfRangeException(
            nameof(dataType), dataType, "Unknown data type."),
    };

    /// <summary>The <see cref="DataType"/> whose elements are <typeparamref name="T"/>.</summary>
    /// <exception cref="ArgumentException">T is not float, Half or BFloat16.</exception>
    internal static DataType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DataType.Float32
        : typeof(T) == typeof(Half) ? DataType.Float16
        : typeof(T) == typeof(BFloat16) ? DataType.BFloat16
        : throw new ArgumentException(
            $"{typeof(T).Name} is not a tensor element type (float, Half, BFloat16).", "T");
}
