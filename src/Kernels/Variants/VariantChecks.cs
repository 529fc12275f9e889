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

/// <summary>Runs <see cref="IShapeDependent.Validate"/> on operators that implement it.</summary>
public static class VariantChecks
{
    /// <summary>Validates <paramref name="op"/> against <paramref name="shape"/> when it depends
    /// on the shape (a type test on a struct: the JIT removes it for other types).</summary>
    public static void Validate<T>(T op, AttentionShape shape) where T : struct
    {
        if (op is IShapeDependent dependent) dependent.Validate(shape);
    }
}
