using ILGPU;
using Half = System.Half;
using ILGPU.Runtime.Cuda;

namespace Managed.Kernels.Layouts;

/// <summary>
/// A storage element type of kernel inputs and outputs, as an operator: an implementation is
/// an empty <c>readonly struct</c> passed as a type argument (<c>where TElement : struct,
/// IElement&lt;TStorage&gt;</c>), so both ILGPU and the CoreCLR JIT specialise the kernel on
/// it and the conversion inlines. Kernels compute in float: they load a
/// <typeparamref name="TStorage"/>, widen it with <see cref="ToSingle"/>, and narrow results
/// with <see cref="FromSingle"/>. The storage type cannot carry the operator itself because
/// <see cref="Half"/> is not ours to extend.
/// </summary>
/// <typeparam name="TStorage">The element as it lies in memory (float, Half, BFloat16).</typeparam>
public interface IElement<TStorage> where TStorage : unmanaged
{
    /// <summary>Exact widening of a stored element to float (NaNs stay NaN).</summary>
    static abstract float ToSingle(TStorage value);

    /// <summary>float → storage, rounding to nearest even (identity for float).</summary>
    static abstract TStorage FromSingle(float value);

    /// <summary>Elements in a 32-bit word of storage: 1 for float, 2 for 16-bit types (kernels
    /// load rows as 16-byte words and widen each element in registers).</summary>
    static abstract int PerWord { get; }

    /// <summary>Element <paramref name="index"/> (0: the low bits) of a 32-bit word of
    /// storage, widened exactly as <see cref="ToSingle"/> does.</summary>
    static abstract float WidenWord(uint word, int index);
}

/// <summary>float storage: both conversions are the identity.</summary>
public readonly struct Float32Element : IElement<float>
{
    /// <summary>value</summary>
    public static float ToSingle(float value) => value;

    /// <summary>value</summary>
    public static float FromSingle(float value) => value;

    /// <summary>1</summary>
    public static int PerWord => 1;

    /// <summary>The word's bits as a float.</summary>
    public static float WidenWord(uint word, int index) => Interop.IntAsFloat(word);
}

/// <summary>
/// IEEE binary16 (<see cref="Half"/>) storage, converted in integer arithmetic: bit-exact with
/// System.Half's operators on the host, the ILGPU CPU accelerator and OpenCL (including
/// OpenCL devices without cl_khr_fp16). On CUDA a single element widens with the native
/// <c>cvt.f32.f16</c>; words widen in integer arithmetic, which the decode kernel ran 1.4-1.5x
/// faster (H200).
/// </summary>
public readonly struct Float16Element : IElement<Half>
{
    /// <summary>(float)value, exact (a signalling NaN comes back quiet, as from
    /// System.Half). On CUDA one <c>cvt.f32.f16</c> (inline PTX): the integer path's branches
    /// kept each load of a decode step waiting on the one before; there a NaN's payload is
    /// the hardware's.</summary>
    public static float ToSingle(Half value)
    {
        ushort bits = BitConverter.HalfToUInt16Bits(value);
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %1; cvt.f32.f16 %0, lo; }",
                out float widened, (uint)bits);
            return widened;
        }
        return HalfBits.ToSingle(bits);
    }

    /// <summary>(Half)value: round to nearest even, overflow to ±∞, NaN kept.</summary>
    public static Half FromSingle(float value) =>
        BitConverter.UInt16BitsToHalf(HalfBits.FromSingle(value));

    /// <summary>2</summary>
    public static int PerWord => 2;

    /// <summary>The low (index 0) or high half of the word widened, in integer arithmetic
    /// and one exact multiply (<see cref="HalfBits.Widen"/>) on every backend.</summary>
    public static float WidenWord(uint word, int index) =>
        HalfBits.Widen(index == 0 ? word & 0xFFFF : word >> 16);
}

/// <summary><see cref="BFloat16"/> storage: widening is a 16-bit shift, narrowing rounds to
/// nearest even in integer arithmetic; valid on every ILGPU backend.</summary>
public readonly struct BFloat16Element : IElement<BFloat16>
{
    /// <summary>(float)value, exact: bits &lt;&lt; 16.</summary>
    public static float ToSingle(BFloat16 value) => BFloat16Bits.ToSingle(value.Bits);

    /// <summary>(BFloat16)value: round to nearest even, NaN kept and made quiet.</summary>
    public static BFloat16 FromSingle(float value) => BFloat16.FromSingle(value);

    /// <summary>2</summary>
    public static int PerWord => 2;

    /// <summary>The low (index 0) or high half of the word widened: a shift or a mask.
    /// </summary>
    public static float WidenWord(uint word, int index) =>
        Interop.IntAsFloat(index == 0 ? word << 16 : word & 0xFFFF_0000u);
}
