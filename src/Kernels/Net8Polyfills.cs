#if !NET9_0_OR_GREATER
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Managed.Kernels;

/// <summary>
/// The vector APIs .NET 9 added that the kernels call, for the net8.0 build only, as C# 14
/// static extension members: the call sites (<c>Vector512.FusedMultiplyAdd</c>,
/// <c>Vector256&lt;int&gt;.Indices</c>, ...) compile unchanged, and the net9.0+ builds use the
/// framework's own members. Namespace Managed.Kernels, so every kernel namespace sees them.
/// Each member has the framework's result: a fused multiply-add rounds once, MaxNative is the
/// platform's max instruction (x86: the second operand where either is NaN), CopySign is
/// bitwise. Exp of doubles is per lane (Math.Exp): as accurate as .NET 9's vector Exp, slower.
/// </summary>
internal static class Net8Polyfills
{
    extension(Vector128)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> FusedMultiplyAdd(
            Vector128<float> a, Vector128<float> b, Vector128<float> c)
        {
            if (Fma.IsSupported) return Fma.MultiplyAdd(a, b, c);
            if (AdvSimd.IsSupported) return AdvSimd.FusedMultiplyAdd(c, a, b);
            return Vector128.Create(
                MathF.FusedMultiplyAdd(a[0], b[0], c[0]), MathF.FusedMultiplyAdd(a[1], b[1], c[1]),
                MathF.FusedMultiplyAdd(a[2], b[2], c[2]), MathF.FusedMultiplyAdd(a[3], b[3], c[3]));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<double> FusedMultiplyAdd(
            Vector128<double> a, Vector128<double> b, Vector128<double> c)
        {
            if (Fma.IsSupported) return Fma.MultiplyAdd(a, b, c);
            if (AdvSimd.Arm64.IsSupported) return AdvSimd.Arm64.FusedMultiplyAdd(c, a, b);
            return Vector128.Create(
                Math.FusedMultiplyAdd(a[0], b[0], c[0]), Math.FusedMultiplyAdd(a[1], b[1], c[1]));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> MaxNative(Vector128<float> a, Vector128<float> b)
        {
            if (Sse.IsSupported) return Sse.Max(a, b);
            if (AdvSimd.IsSupported) return AdvSimd.Max(a, b);
            return Vector128.Max(a, b);
        }
    }

    extension(Vector256)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> FusedMultiplyAdd(
            Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
            Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : Vector256.Create(
                Vector128.FusedMultiplyAdd(a.GetLower(), b.GetLower(), c.GetLower()),
                Vector128.FusedMultiplyAdd(a.GetUpper(), b.GetUpper(), c.GetUpper()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<double> FusedMultiplyAdd(
            Vector256<double> a, Vector256<double> b, Vector256<double> c) =>
            Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : Vector256.Create(
                Vector128.FusedMultiplyAdd(a.GetLower(), b.GetLower(), c.GetLower()),
                Vector128.FusedMultiplyAdd(a.GetUpper(), b.GetUpper(), c.GetUpper()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> MaxNative(Vector256<float> a, Vector256<float> b) =>
            Avx.IsSupported ? Avx.Max(a, b) : Vector256.Create(
                Vector128.MaxNative(a.GetLower(), b.GetLower()),
                Vector128.MaxNative(a.GetUpper(), b.GetUpper()));

        /// <summary>The magnitude of <paramref name="value"/>, the sign bit of
        /// <paramref name="sign"/>.</summary>
        public static Vector256<double> CopySign(Vector256<double> value, Vector256<double> sign) =>
            Vector256.ConditionalSelect(Vector256.Create(-0.0), sign, value);

        /// <summary>e^x per lane (Math.Exp).</summary>
        public static Vector256<double> Exp(Vector256<double> x) =>
            Vector256.Create(Math.Exp(x[0]), Math.Exp(x[1]), Math.Exp(x[2]), Math.Exp(x[3]));
    }

    extension(Vector512)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> FusedMultiplyAdd(
            Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
            Avx512F.IsSupported ? Avx512F.FusedMultiplyAdd(a, b, c) : Vector512.Create(
                Vector256.FusedMultiplyAdd(a.GetLower(), b.GetLower(), c.GetLower()),
                Vector256.FusedMultiplyAdd(a.GetUpper(), b.GetUpper(), c.GetUpper()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<double> FusedMultiplyAdd(
            Vector512<double> a, Vector512<double> b, Vector512<double> c) =>
            Avx512F.IsSupported ? Avx512F.FusedMultiplyAdd(a, b, c) : Vector512.Create(
                Vector256.FusedMultiplyAdd(a.GetLower(), b.GetLower(), c.GetLower()),
                Vector256.FusedMultiplyAdd(a.GetUpper(), b.GetUpper(), c.GetUpper()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> MaxNative(Vector512<float> a, Vector512<float> b) =>
            Avx512F.IsSupported ? Avx512F.Max(a, b) : Vector512.Create(
                Vector256.MaxNative(a.GetLower(), b.GetLower()),
                Vector256.MaxNative(a.GetUpper(), b.GetUpper()));

        /// <summary>The magnitude of <paramref name="value"/>, the sign bit of
        /// <paramref name="sign"/>.</summary>
        public static Vector512<double> CopySign(Vector512<double> value, Vector512<double> sign) =>
            Vector512.ConditionalSelect(Vector512.Create(-0.0), sign, value);

        /// <summary>e^x per lane (Math.Exp).</summary>
        public static Vector512<double> Exp(Vector512<double> x) =>
            Vector512.Create(Vector256.Exp(x.GetLower()), Vector256.Exp(x.GetUpper()));
    }

    extension(Vector256<int>)
    {
        /// <summary>(0, 1, ..., 7).</summary>
        public static Vector256<int> Indices => Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
    }
}

/// <summary><c>Vector512&lt;int&gt;.Indices</c> (.NET 9) for the net8.0 build; a class of its
/// own, as two static extension properties of one name cannot share a class.</summary>
internal static class Net8Polyfills512
{
    extension(Vector512<int>)
    {
        /// <summary>(0, 1, ..., 15).</summary>
        public static Vector512<int> Indices =>
            Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    }
}
#endif
