using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Variants;
using Managed.Tensors;
using Xunit;

namespace Managed.Tests.Tensors;

/// <summary>
/// Attention on strided and half-precision tensors: a (batch, seq, heads, dim) tensor
/// transposed as a view, a cache narrowed to its filled rows, and Float16/BFloat16 q, k, v, on
/// the host and the ILGPU CPU accelerator, each equal bit for bit to the dense Float32 call on
/// the same values.
/// </summary>
public sealed class TensorLayoutAttentionTests
{
    public static TheoryData<DeviceKind> Devices() => new() { DeviceKind.Host, DeviceKind.IlgpuCpu };

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static NdTensor On(ComputeDevice? device, NdTensor t) =>
        device is null ? t : t.ToDevice(device);

    private static float[] Dense(NdTensor t)
    {
        using var host = t.IsHost ? null : t.ToHost();
        return (host ?? t).AsReadOnlySpan().ToArray();
    }

    /// <summary>q, k, v and the output as (batch, seq, heads, dim) tensors seen through
    /// Transpose(1, 2); k and v as the first 50 rows of a cache of 64 (Narrow); then the same
    /// in Float16 and BFloat16.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void StridedAndHalfTensorsEqualDense(DeviceKind kind)
    {
        using var device = kind == DeviceKind.Host ? null : ComputeDevice.Open(kind);
        const int b = 2, h = 4, kvh = 2, n = 17, cap = 64, len = 50, d = 16;
        float[] qd = Random(b * h * n * d, 1), kd = Random(b * kvh * cap * d, 2),
            vd = Random(b * kvh * cap * d, 3);
        var options = new AttentionOptions { Alignment = QueryAlignment.BottomRight };

        // Expected: dense (batch, heads, seq, dim) tensors of the same values.
        using var q0 = On(device, NdTensor.FromArray(Permute(qd, b, n, h, d), b, h, n, d));
        using var kFull = NdTensor.FromArray(Permute(kd, b, cap, kvh, d), b, kvh, cap, d);
        using var vFull = NdTensor.FromArray(Permute(vd, b, cap, kvh, d), b, kvh, cap, d);
        using var k0 = On(device, Copy(kFull.Narrow(2, 0, len)));
        using var v0 = On(device, Copy(vFull.Narrow(2, 0, len)));
        using var o0 = On(device, NdTensor.Allocate(b, h, n, d));
        TensorAttention.Forward(q0, k0, v0, o0, null, default(NoScore), default(CausalMask),
            default(SoftmaxNormalizer), options);
        float[] expected = Dense(o0);

        // Strided views of (batch, seq, heads, dim) storage.
        using var qs = On(device, NdTensor.FromArray(qd, b, n, h, d));
        using var ks = On(device, NdTensor.FromArray(kd, b, cap, kvh, d));
        using var vs = On(device, NdTensor.FromArray(vd, b, cap, kvh, d));
        using var os = On(device, NdTensor.Allocate(b, n, h, d));
        TensorAttention.Forward(qs.Transpose(1, 2), ks.Transpose(1, 2).Narrow(2, 0, len),
            vs.Transpose(1, 2).Narrow(2, 0, len), os.Transpose(1, 2), null, default(NoScore),
            default(CausalMask), default(SoftmaxNormalizer), options);
        Assert.Equal(expected, Permute(Dense(os), b, n, h, d));

        foreach (var type in new[] { DataType.Float16, DataType.BFloat16 })
        {
            using var qh = qs.ConvertTo(type);
            using var kh = ks.ConvertTo(type);
            using var vh = vs.ConvertTo(type);
            using var oh = On(device, NdTensor.Allocate(b, n, h, d));
            TensorAttention.Forward(qh.Transpose(1, 2), kh.Transpose(1, 2).Narrow(2, 0, len),
                vh.Transpose(1, 2).Narrow(2, 0, len), oh.Transpose(1, 2), null, default(NoScore),
                default(CausalMask), default(SoftmaxNormalizer), options);
            // The same call on the widened values, in Float32.
            using var qw = qh.ConvertTo(DataType.Float32);
            using var kw = kh.ConvertTo(DataType.Float32);
            using var vw = vh.ConvertTo(DataType.Float32);
            using var ow = On(device, NdTensor.Allocate(b, n, h, d));
            TensorAttention.Forward(qw.Transpose(1, 2), kw.Transpose(1, 2).Narrow(2, 0, len),
                vw.Transpose(1, 2).Narrow(2, 0, len), ow.Transpose(1, 2), null, default(NoScore),
                default(CausalMask), default(SoftmaxNormalizer), options);
            Assert.Equal(Dense(ow), Dense(oh));
        }
    }

    /// <summary>Mixed element types, and a last dimension that is not contiguous, are
    /// rejected by name.</summary>
    [Fact]
    public void MixedTypesAndStridedLastDimAreRejected()
    {
        using var q = NdTensor.Allocate(DataType.BFloat16, 1, 2, 4, 8);
        using var k = NdTensor.Allocate(1, 2, 4, 8);
        using var o = NdTensor.Allocate(1, 2, 4, 8);
        var e = Assert.Throws<ArgumentException>(() => TensorAttention.Forward(q, k, k, o, null,
            default(NoScore), default(NoMask), default(SoftmaxNormalizer)));
        Assert.Equal("k", e.ParamName);
        Assert.Contains("q's element type", e.Message);

        using var kt = NdTensor.Allocate(1, 2, 8, 4);
        e = Assert.Throws<ArgumentException>(() => TensorAttention.Forward(k, kt.Transpose(2, 3),
            kt.Transpose(2, 3), o, null, default(NoScore), default(NoMask),
            default(SoftmaxNormalizer)));
        Assert.Equal("k", e.ParamName);
        Assert.Contains("last dimension", e.Message);
    }

    // (a, b, c, d) dense -> (a, c, b, d) dense.
    private static float[] Permute(float[] x, int a, int b, int c, int d)
    {
        var y = new float[x.Length];
        for (int i = 0; i < a; i++)
            for (int j = 0; j < b; j++)
                for (int k = 0; k < c; k++)
                    Array.Copy(x, (((long)i * b + j) * c + k) * d, y, (((long)i * c + k) * b + j) * d, d);
        return y;
    }

    private static NdTensor Copy(NdTensor view)
    {
        var t = NdTensor.Allocate(view.Shape.ToArray());
        var dst = t.AsSpan();
        int d = view.Shape[3], at = 0;
        for (int i = 0; i < view.Shape[0]; i++)
            for (int j = 0; j < view.Shape[1]; j++)
                for (int r = 0; r < view.Shape[2]; r++, at += d)
                    for (int c = 0; c < d; c++)
                        dst[at + c] = view[i, j, r, c];
        return t;
    }
}
