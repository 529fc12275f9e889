using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;

namespace Managed.Tests.Variants;

/// <summary>MaskMath.Divide replaces integer division by a float multiply where it is exact.</summary>
public sealed class MaskMathProperties
{
    /// <summary>Equals a / b for any a &gt;= 0 and b &gt;= 1, around the 2^22 switch-over, at
    /// multiples of b and one below them (where a wrong rounding would show).</summary>
    [Property(MaxTest = 2000)]
    public Property DivideEqualsIntegerDivision() =>
        Prop.ForAll(Gen.Choose(1, 100_000).ToArbitrary(),
            Gen.Frequency((2, Gen.Choose(0, (1 << 22) + 10)), (1, Gen.Choose((1 << 22) - 200, (1 << 22) + 200)),
                (1, Gen.Choose(0, int.MaxValue))).ToArbitrary(),
            (b, a) =>
            {
                float inverse = 1f / b;
                foreach (int x in new[] { a, a / b * b, Math.Max(0, a / b * b - 1), Math.Min(int.MaxValue - 1, a / b * b + b - 1) })
                    if (MaskMath.Divide(x, b, inverse) != x / b)
                        throw new Xunit.Sdk.XunitException($"{x} / {b}: {MaskMath.Divide(x, b, inverse)}, expected {x / b}");
            });

    /// <summary>Every a below 2^22 for the divisors a document mask typically uses.</summary>
    [Xunit.Theory]
    [Xunit.InlineData(1)]
    [Xunit.InlineData(3)]
    [Xunit.InlineData(1000)]
    [Xunit.InlineData(4093)]
    public void DivideIsExactBelowTheSwitchOver(int b)
    {
        float inverse = 1f / b;
        for (int a = 0; a < (1 << 22); a++)
            if (MaskMath.Divide(a, b, inverse) != a / b)
                throw new Xunit.Sdk.XunitException($"{a} / {b}: {MaskMath.Divide(a, b, inverse)}");
    }
}
