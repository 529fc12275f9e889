using Managed.Kernels.Variants;

namespace Managed.Kernels.LinearAttention;

/// <summary>
/// A feature map phi of linear attention: a row x of <c>dim</c> elements (a query or key of
/// one head at one position) becomes F = <see cref="Features"/>(dim) features, and attention
/// weighs key s for query t by phi(q_t) . phi(k_s) instead of exp(q_t . k_s). A readonly
/// struct used by every backend (the host loop and the ILGPU kernel call the same
/// <see cref="Feature{TRow}"/>); parameters (a projection, learned weights) are instance fields,
/// tables through <see cref="ITable{T}"/> so the same map binds host or device memory.
/// </summary>
public interface IFeatureMap
{
    /// <summary>F, the number of features of a row of <paramref name="dim"/> elements.</summary>
    int Features(int dim);

    /// <summary>Feature <paramref name="f"/> (0 &lt;= f &lt; F) of the row
    /// x[offset .. offset + dim) of head <paramref name="head"/> at token
    /// <paramref name="position"/>. Pure; computed in float; never throws.</summary>
    float Feature<TRow>(TRow x, int offset, int dim, int head, int position, int f)
        where TRow : struct, ITable<float>;

    /// <summary>Null when the map serves rows of <paramref name="dim"/> elements in
    /// <paramref name="heads"/> heads; else what is wrong (which parameter, its value, what was
    /// expected). Called on the host before any kernel runs.</summary>
    string? ParameterError(int dim, int heads);
}
