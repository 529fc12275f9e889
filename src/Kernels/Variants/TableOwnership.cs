using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

namespace Managed.Kernels.Variants;

/// <summary>
/// Checks, before a kernel runs, that every <see cref="DeviceTable{T}"/> an operator struct
/// holds is memory of the accelerator that runs it (a view of another accelerator would be read
/// as a foreign address). Found through the struct's fields once per type; operators without
/// device tables cost a static flag test.
/// </summary>
internal static class TableOwnership
{
    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="argument"/> when
    /// a device table of <paramref name="op"/> lives on another accelerator.</summary>
    public static void Check<T>(T op, Accelerator accelerator, string argument) where T : struct
    {
        if (Paths<T>.Tables.Length == 0) return;
        object boxed = op;
        foreach (var path in Paths<T>.Tables)
        {
            object? value = boxed;
            foreach (var field in path) value = field.GetValue(value);
            var owner = value is IDeviceTable table ? table.Owner : null;
            if (owner is not null && !ReferenceEquals(owner, accelerator))
                throw new ArgumentException(
                    $"{typeof(T).Name} reads a DeviceTable on {owner.Name}, not on the "
                    + $"{accelerator.Name} that runs the kernel.", argument);
        }
    }

    /// <summary>Field paths from <typeparamref name="T"/> to each device table it holds.</summary>
    private static class Paths<T>
    {
        public static readonly FieldInfo[][] Tables = Find(typeof(T), []).ToArray();

        private static IEnumerable<FieldInfo[]> Find(Type type, FieldInfo[] prefix)
        {
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public
                | BindingFlags.NonPublic))
            {
                var ft = field.FieldType;
                if (!ft.IsValueType || ft.IsPrimitive || ft.IsPointer || ft == type) continue;
                FieldInfo[] path = [.. prefix, field];
                if (ft.IsGenericType && ft.GetGenericTypeDefinition() == typeof(DeviceTable<>))
                    yield return path;
                else
                    foreach (var inner in Find(ft, path)) yield return inner;
            }
        }
    }
}

/// <summary>A device table's owner, without its element type.</summary>
internal interface IDeviceTable
{
    /// <summary>The accelerator of the table's memory; null for an empty table.</summary>
    Accelerator? Owner { get; }
}
