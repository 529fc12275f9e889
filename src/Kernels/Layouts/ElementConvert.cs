using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Managed.Kernels.Layouts;

/// <summary>
/// Span conversions between float and the 16-bit storage types for the CPU path: the SIMD
/// counterparts of <see cref="IElement{TStorage}"/>'s scalar members, with identical results
/// bit for bit. Half goes through TensorPrimitives (F16C/AVX-512 where available); bfloat16 uses
/// Vector512 or Vector256 when accelerated and a scalar loop for the tail.
/// </summary>
public static class ElementConvert
{
    /// <summary>destination[i] = (float)source[i], exact.</summary>
    /// <exception cref="ArgumentException">destination is shorter than source.</exception>
    public static void ToSingle(ReadOnlySpan<Half> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        TensorPrimitives.ConvertToSingle(source, destination);
    }

    /// <summary>destination[i] = (Half)source[i]: round to nearest even, NaN kept.</summary>
    /// <exception cref="ArgumentException">destination is shorter than source.</exception>
    public static void FromSingle(ReadOnlySpan<float> source, Span<Half> destination)
    {
        CheckLengths(source.Length, destination.Length);
        TensorPrimitives.ConvertToHalf(source, destination);
    }

    /// <summary>destination[i] = (float)source[i], exact: each element's bits
    /// &lt;&lt; 16.</summary>
    /// <exception cref="ArgumentException">destination is shorter than source.</exception>
    public static void ToSingle(ReadOnlySpan<BFloat16> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        ReadOnlySpan<ushort> from = MemoryMarshal.Cast<BFloat16, ushort>(source);
        Span<uint> to = MemoryMarshal.Cast<float, uint>(destination);
        ref ushort src = ref MemoryMarshal.GetReference(from);
        ref uint dst = ref MemoryMarshal.GetReference(to);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= from.Length - Vector512<ushort>.Count; i += Vector512<ushort>.Count)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref src, (nuint)i));
                (lo << 16).StoreUnsafe(ref dst, (nuint)i);
                (hi << 16).StoreUnsafe(ref dst, (nuint)(i + Vector512<uint>.Count));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= from.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref src, (nuint)i));
                (lo << 16).StoreUnsafe(ref dst, (nuint)i);
                (hi << 16).StoreUnsafe(ref dst, (nuint)(i + Vector256<uint>.Count));
            }
        }
        for (; i < from.Length; i++)
            Unsafe.Add(ref dst, i) = (uint)Unsafe.Add(ref src, i) << 16;
    }

    /// <summary>destination[i] = (BFloat16)source[i]: round to nearest even, overflow to ±∞,
    /// NaN kept and made quiet (<see cref="BFloat16.FromSingle"/>).</summary>
    /// <exception cref="ArgumentException">destination is shorter than source.</exception>
    public static void FromSingle(ReadOnlySpan<float> source, Span<BFloat16> destination)
    {
        CheckLengths(source.Length, destination.Length);
        ReadOnlySpan<uint> from = MemoryMarshal.Cast<float, uint>(source);
        Span<ushort> to = MemoryMarshal.Cast<BFloat16, ushort>(destination);
        ref uint src = ref MemoryMarshal.GetReference(from);
        ref ushort dst = ref MemoryMarshal.GetReference(to);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= from.Length - Vector512<ushort>.Count; i += Vector512<ushort>.Count)
            {
                var lo = RoundToBFloat16(Vector512.LoadUnsafe(ref src, (nuint)i));
                var hi = RoundToBFloat16(
                    Vector512.LoadUnsafe(ref src, (nuint)(i + Vector512<uint>.Count)));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= from.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var lo = RoundToBFloat16(Vector256.LoadUnsafe(ref src, (nuint)i));
                var hi = RoundToBFloat16(
                    Vector256.LoadUnsafe(ref src, (nuint)(i + Vector256<uint>.Count)));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        for (; i < from.Length; i++)
            Unsafe.Add(ref dst, i) = BFloat16Bits.FromSingle(source[i]);
    }

    /// <summary>Lane-wise <see cref="BFloat16Bits.FromSingle"/> on float bit patterns; the
    /// result's upper 16 bits of each lane are zero.</summary>
    internal static Vector512<uint> RoundToBFloat16(Vector512<uint> bits)
    {
        var isNaN = Vector512.GreaterThan(bits & Vector512.Create(0x7FFF_FFFFu),
            Vector512.Create(0x7F80_0000u));
        var rounded = bits + Vector512.Create(0x7FFFu) + ((bits >> 16) & Vector512<uint>.One);
        var quiet = bits | Vector512.Create(0x0040_0000u);
        return Vector512.ConditionalSelect(isNaN, quiet, rounded) >> 16;
    }

    /// <summary>Lane-wise <see cref="BFloat16Bits.FromSingle"/> on float bit patterns; the
    /// result's upper 16 bits of each lane are zero.</summary>
    internal static Vector256<uint> RoundToBFloat16(Vector256<uint> bits)
    {
        var isNaN = Vector256.GreaterThan(bits & Vector256.Create(0x7FFF_FFFFu),
            Vector256.Create(0x7F80_0000u));
        var rounded = bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One);
        var quiet = bits | Vector256.Create(0x0040_0000u);
        return Vector256.ConditionalSelect(isNaN, quiet, rounded) >> 16;
    }

    private static void CheckLengths(int source, int destination)
    {
        if (destination < source)
            throw new ArgumentException(
                $"Destination is too short: {destination} elements for {source}.",
                nameof(destination));
    }
}
