using System.Runtime.Intrinsics;
using Managed.Kernels.Layouts;
using Managed.Kernels.Matmul;
using Xunit;
using Half = System.Half;

namespace Managed.Tests.Matmul;

/// <summary>The host kernels' in-register widening equals System.Half's and BFloat16's
/// conversions bit for bit, for every 16-bit pattern (NaNs, infinities, subnormals, -0
/// included), at each SIMD width.</summary>
public sealed unsafe class WeightWideningTests
{
    [Fact]
    public void EveryPatternWidensExactly()
    {
        var bits = new ushort[65536];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        fixed (ushort* p = bits)
        {
            Check(p, 32, q => Pair(Widen512.Half(q)), q => Pair(Widen512.BFloat16(q)));
            Check(p, 16, q => Pair(Widen256.Half(q)), q => Pair(Widen256.BFloat16(q)));
            Check(p, 8, q => Pair(Widen128.Half(q)), q => Pair(Widen128.BFloat16(q)));
        }
    }

    private delegate float[] Widen(ushort* p);

    private static void Check(ushort* p, int step, Widen half, Widen bf16)
    {
        for (int i = 0; i < 65536; i += step)
        {
            float[] h = half(p + i), b = bf16(p + i);
            for (int l = 0; l < step; l++)
            {
                ushort v = (ushort)(i + l);
                Assert.True(Same(h[l], (float)BitConverter.UInt16BitsToHalf(v)),
                    $"Half 0x{v:X4} (x{step}): {h[l]:R}");
                Assert.True(Same(b[l], (float)BFloat16.FromBits(v)),
                    $"BFloat16 0x{v:X4} (x{step}): {b[l]:R}");
            }
        }
    }

    private static bool Same(float a, float b) =>
        BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b);

    private static float[] Pair<TV>((TV Lo, TV Hi) v) where TV : struct
    {
        var lo = ToArray(v.Lo);
        return [.. lo, .. ToArray(v.Hi)];
    }

    private static float[] ToArray<TV>(TV v) => v switch
    {
        Vector512<float> a => Enumerable.Range(0, 16).Select(i => a[i]).ToArray(),
        Vector256<float> a => Enumerable.Range(0, 8).Select(i => a[i]).ToArray(),
        Vector128<float> a => Enumerable.Range(0, 4).Select(i => a[i]).ToArray(),
        _ => throw new ArgumentException(typeof(TV).Name),
    };
}
