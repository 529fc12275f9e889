
namespace Managed.Tensors;

/// <summary>Element type of a <see cref="NdTensor"/>.</summary>
public enum DataType : byte
{
    /// <summary>IEEE 754 binary32 (<see cref="float"/>): the only type supported now.</summary>
    Float32 = 0,

    /// <summary>IEEE 754 binary16 (<see cref="Half"/>). Reserved for device storage; no
    /// tensor of this type can be created yet.</summary>
    Float16 = 1,
}

/// <summary>Facts about <see cref="DataType"/> values.</summary>
public static class DataTypeExtensions
{
    /// <summary>Bytes per element: Float32 = 4, Float16 = 2.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined type.</exception>
    public static int SizeInBytes(this DataType dataType) => dataType switch
    {
        DataType.Float32 => sizeof(float),
        DataType.Float16 => 2,
        _ => throw new ArgumentOutOfRangeException(
            nameof(dataType), dataType, "Unknown data type."),
    };

    /// <summary>The <see cref="DataType"/> whose elements are <typeparamref name="T"/>.</summary>
    internal static DataType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DataType.Float32
        : typeof(T) == typeof(Half) ? DataType.Float16
        : throw new NotSupportedException($"{typeof(T).Name} is not a tensor element type.");
}
