using System.Runtime.Intrinsics;
using Managed.Kernels.Simd;
using Xunit;

namespace Managed.Tests.Simd;

/// <summary>
/// The lane sums at every SIMD width: <see cref="ISimd{TV}.SumAcross4"/> equals four
/// <see cref="ISimd{TV}.SumAcross"/> bit for bit (the decode scores reduce four keys at once or
/// one at a time, and paged decode must equal contiguous exactly), both are within float
/// rounding of the fp64 sum; and the row-score micro-kernel, whose blocked path (4 rows x 4
/// keys) and key-by-key path both run on a width that is not a multiple of 4 keys, gives every
/// score as the key-by-key path computes it.
/// </summary>
public sealed unsafe class ReductionProperties
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void SumAcross4EqualsSumAcrossBitForBit(int seed)
    {
        Check<Simd512, Vector512<float>>(seed);
        Check<Simd256, Vector256<float>>(seed);
        Check<Simd128, Vector128<float>>(seed);
    }

    private static void Check<TOps, TV>(int seed) where TOps : struct, ISimd<TV>
        where TV : unmanaged
    {
        var rng = new Random(seed);
        int n = TOps.Count;
        var x = new float[4 * n];
        for (int trial = 0; trial < 200; trial++)
        {
            // Magnitudes over several binades, so the order of the additions shows in the bits.
            for (int i = 0; i < x.Length; i++)
                x[i] = (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-3, 4)));
            fixed (float* p = x)
            {
                var four = TOps.SumAcross4(TOps.Load(p), TOps.Load(p + n), TOps.Load(p + 2 * n),
                    TOps.Load(p + 3 * n));
                for (int v = 0; v < 4; v++)
                {
                    float one = TOps.SumAcross(TOps.Load(p + v * n));
                    Assert.Equal(BitConverter.SingleToInt32Bits(one),
                        BitConverter.SingleToInt32Bits(four.GetElement(v)));
                    double exact = 0, magnitude = 0;
                    for (int i = 0; i < n; i++)
                    {
                        exact += x[v * n + i];
                        magnitude += Math.Abs(x[v * n + i]);
                    }
                    Assert.True(Math.Abs(one - exact) <= n * 6e-8 * magnitude + 1e-30,
                        $"width {n}: {one} vs {exact}");
                }
            }
        }
    }

    /// <summary>Scores of 4 query rows against 7 keys, d = 128: keys 0-3 through the blocked
    /// path, 4-6 key by key; each equals the single-row path's score of the same row and key
    /// bit for bit (rows 4-5 of a 6-row call take it) and the fp64 dot within rounding.
    /// </summary>
    [Fact]
    public void RowScoresBlockedEqualsKeyByKey()
    {
        const int d = 128, keys = 7, rows = 6, ld = 8;
        var rng = new Random(9);
        var q = new float[rows * d];
        var k = new float[keys * d];
        for (int i = 0; i < q.Length; i++) q[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < k.Length; i++) k[i] = (float)(rng.NextDouble() * 2 - 1);
        // Rows 4 and 5 repeat rows 0 and 1: the remainder rows run key by key.
        Array.Copy(q, 0, q, 4 * d, 2 * d);
        var s = new float[rows * ld];
        fixed (float* qp = q, kp = k, sp = s)
            MicroKernels<Simd512, Vector512<float>>.RowScores(qp, rows, d, kp, d, keys, sp, ld);
        for (int r = 0; r < 2; r++)
        for (int j = 0; j < keys; j++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(s[(4 + r) * ld + j]),
                BitConverter.SingleToInt32Bits(s[r * ld + j]));
            double dot = 0;
            for (int c = 0; c < d; c++) dot += (double)q[r * d + c] * k[j * d + c];
            Assert.Equal(dot, s[r * ld + j], 1e-4);
        }
    }
}
