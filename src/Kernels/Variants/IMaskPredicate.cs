using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>
/// Which keys a query may attend to (FlexAttention's <c>mask_mod</c>). <c>q</c> is the query's
/// position on the key axis (see <see cref="QueryAlignment"/>), <c>k</c> the key index.
/// Implementations are pure, allocation-free and never throw: ILGPU compiles them into GPU kernels.
/// </summary>
public interface IMaskPredicate
{
    /// <summary>True where query position <paramref name="q"/> may attend to key <paramref name="k"/>.</summary>
    bool Allows(int batch, int head, int q, int k);

    /// <summary>
    /// Analytic class of the tile [q0, q1) x [k0, k1) (positions, end exclusive). Must be exact
    /// in one direction: Empty only if no pair is allowed, Full only if every pair is allowed;
    /// Partial is always a correct (if slower) answer.
    /// </summary>
    TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1);

    /// <summary>
    /// A lower bound on the keys any query position of [q0, q1) may attend (0 when unknown).
    /// With <see cref="KeyEnd"/> it bounds the key tiles a kernel visits at all, as
    /// FlexAttention's block mask lists only the blocks of a row: a sparse mask then costs no
    /// per-tile work outside its band.
    /// </summary>
    int KeyStart(int batch, int head, int q0, int q1);

    /// <summary>An exclusive upper bound on the keys any query position of [q0, q1) may attend
    /// (int.MaxValue when unknown).</summary>
    int KeyEnd(int batch, int head, int q0, int q1);

    /// <summary>
    /// True when every row's allowed keys form one interval that the single-row key range gives
    /// exactly: for keys 0 &lt;= k &lt; seqK, Allows(b, h, q, k) iff KeyStart(b, h, q, q + 1) &lt;= k &lt;
    /// KeyEnd(b, h, q, q + 1).
    /// Kernels then mask a partial tile with two compares per key against bounds computed once
    /// per row, instead of calling <see cref="Allows"/> per pair. False (the default) is always
    /// correct.
    /// </summary>
    static virtual bool RowIsInterval => false;
}
