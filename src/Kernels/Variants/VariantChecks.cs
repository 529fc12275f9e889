using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>
/// Implemented by operator structs whose validity depends on the call: a table must cover the
/// batch, heads or positions of the shape. Every entry point calls it on the host before any
/// kernel runs, so a bad table is an exception, never an out-of-bounds read on a device.
/// </summary>
public interface IShapeDependent
{
    /// <summary>Throws <see cref="ArgumentException"/> when this operator cannot serve
    /// <paramref name="shape"/> (which table, which dimension, what was expected).</summary>
    void Validate(AttentionShape shape);
}

/// <summary>
/// Implemented by operator structs with parameters that can be missing or invalid: a default
/// instance whose zero fields mean nothing (a softcap of 0, ALiBi without a head count,
/// documents of length 0), or parameters outside the operator's domain. Combinators forward
/// to their operands. Every entry point calls it (through <see cref="VariantChecks"/>) on the
/// host before any kernel runs, so a missing parameter is an exception naming the argument,
/// never a silently wrong result or a division by zero on a device.
/// </summary>
public interface IValidated
{
    /// <summary>Null when the parameters are valid; else which parameter is missing or
    /// invalid, its value and what was expected.</summary>
    string? ParameterError();
}

/// <summary>Host-side checks of operator structs before a kernel runs.</summary>
internal static class VariantChecks
{
    /// <summary>The parameter error of <paramref name="op"/> when it is
    /// <see cref="IValidated"/> (null when valid or when it has no parameters to check).</summary>
    public static string? ParameterError<T>(T op) where T : struct =>
        op is IValidated validated ? validated.ParameterError() : null;

    /// <summary>Validates <paramref name="op"/>'s parameters (ArgumentException for "op"), then
    /// against <paramref name="shape"/> when it depends on the shape (type tests on a struct:
    /// the JIT removes them for other types).</summary>
    public static void Validate<T>(T op, AttentionShape shape) where T : struct
    {
        if (ParameterError(op) is { } error) throw new ArgumentException(error, nameof(op));
        if (op is IShapeDependent dependent) dependent.Validate(shape);
    }

    /// <summary>The message of a missing or invalid parameter: "{type}: {parameter} = {value};
    /// expected {expected}", with a hint when the instance looks like a default one.</summary>
    internal static string Missing(string type, string parameter, object value, string expected,
        bool isDefault) =>
        $"{type}: {parameter} = {value}; expected {expected}."
        + (isDefault
            ? $" A default({type}) has no parameters: build it with its constructor." : "");

    /// <summary>Validates <paramref name="op"/> for a call on the host (<paramref name="onDevice"/>
    /// false) or an ILGPU device: its tables must live where the kernel runs.</summary>
    /// <exception cref="ArgumentException">A table lives on the other side, a parameter is
    /// missing or invalid (<see cref="IValidated"/>; named <paramref name="argument"/>), or the
    /// operator does not fit the shape.</exception>
    public static void Validate<T>(T op, AttentionShape shape, bool onDevice, string argument) where T : struct
    {
        CheckTableSide<T>(onDevice, argument);
        if (ParameterError(op) is { } error) throw new ArgumentException(error, argument);
        Validate(op, shape);
    }

    /// <summary>Throws when <typeparamref name="T"/> holds tables of the other side: host
    /// tables for a device call (<paramref name="onDevice"/>), device tables for a host call.
    /// </summary>
    public static void CheckTableSide<T>(bool onDevice, string argument) where T : struct
    {
        if (onDevice && TableKinds<T>.Host)
            throw new ArgumentException(
                $"{typeof(T).Name} reads a HostTable, which an ILGPU device cannot read; bind it to a DeviceTable (VariantTable.Upload).", argument);
        if (!onDevice && TableKinds<T>.Device)
            throw new ArgumentException(
                $"{typeof(T).Name} reads a DeviceTable, which the host kernel cannot read; bind it to a HostTable (VariantTable.Host).", argument);
    }

    /// <summary>Which table types a struct holds, found once per type through its fields.</summary>
    private static class TableKinds<T>
    {
        public static readonly bool Host = Holds(typeof(T), typeof(HostTable<>));
        public static readonly bool Device = Holds(typeof(T), typeof(DeviceTable<>));

        private static bool Holds(Type type, Type table)
        {
            if (type.IsGenericType && type.GetGenericTypeDefinition() == table) return true;
            foreach (var field in type.GetFields(System.Reflection.BindingFlags.Instance
                | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic))
                if (field.FieldType.IsValueType && !field.FieldType.IsPrimitive && !field.FieldType.IsPointer
                    && field.FieldType != type && Holds(field.FieldType, table))
                    return true;
            return false;
        }
    }
}
