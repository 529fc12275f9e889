using Managed.Kernels.Devices;
using Xunit;

namespace Managed.Tests.Devices;

/// <summary>The rewrite of inline-PTX output variables into registers: whole-value loads and
/// stores become moves, float literals their bits; a variable whose address is used any other
/// way stays in local memory.</summary>
public sealed class PtxLocalPromotionTests
{
    private const string Ptx = """
        .entry k()
        {
        	.local .align 4 .b8 __local_depot0[4];
        	.local .align 8 .b8 __local_depot1[8];
        	.local .align 4 .b8 __local_depot2[4];
        	mov.b64	%rd1, __local_depot0;
        	mov.b64	%rd2, __local_depot1;
        	mov.b64	%rd3, __local_depot2;
        	st.local.f32	[%rd1], 0f3F800000;
        	cvt.rn.f16x2.f32 	%r1, %f1, %f2;
        	st.local.b32	[%rd1], %r1;
        	ld.local.b32	%r2, [%rd1];
        	st.local.b64	[%rd2], %rd9;
        	ld.local.b64	%rd8, [%rd2];
        	st.local.b32	[%rd3], %r1;
        	add.s64	%rd4, %rd3, 4;
        	.local .align 4 .b8 __local_depot3[4];
        	mov.b64	%rd5, __local_depot3;
        	st.local.u8	[%rd5], %rs1;
        	ld.local.u8	%rs2, [%rd5];
        	ret;
        }
        """;

    [Fact]
    public void WholeValueVariablesBecomeRegisters()
    {
        string promoted = PtxLocalPromotion.Promote(Ptx);
        Assert.Contains(".reg .b32 %lp0;", promoted);
        Assert.Contains(".reg .b64 %lp1;", promoted);
        Assert.Contains("mov.b32\t%lp0, 0x3F800000;", promoted);
        Assert.Contains("mov.b32\t%lp0, %r1;", promoted);
        Assert.Contains("mov.b32\t%r2, %lp0;", promoted);
        Assert.Contains("mov.b64\t%lp1, %rd9;", promoted);
        Assert.Contains("mov.b64\t%rd8, %lp1;", promoted);
        Assert.DoesNotContain("__local_depot0", promoted);
        Assert.DoesNotContain("__local_depot1", promoted);
        // depot2's address is also added to: it stays a local variable, untouched.
        Assert.Contains(".local .align 4 .b8 __local_depot2[4];", promoted);
        Assert.Contains("mov.b64\t%rd3, __local_depot2;", promoted);
        Assert.Contains("st.local.b32\t[%rd3], %r1;", promoted);
        // depot3 holds a byte in a 4-byte slot: left as it is.
        Assert.Contains("st.local.u8\t[%rd5], %rs1;", promoted);
        Assert.Contains("ld.local.u8\t%rs2, [%rd5];", promoted);
    }

    /// <summary>Names are per function: a depot promoted in one function leaves another
    /// function's depot of the same name, read through an offset, in local memory.</summary>
    [Fact]
    public void EachFunctionIsRewrittenOnItsOwn()
    {
        const string two = """
            .func f()
            {
            	.local .align 4 .b8 __local_depot0[4];
            	mov.b64	%rd1, __local_depot0;
            	st.local.b32	[%rd1], %r1;
            	ld.local.b32	%r2, [%rd1];
            	ret;
            }
            .entry k()
            {
            	.local .align 4 .b8 __local_depot0[4];
            	mov.b64	%rd7, __local_depot0;
            	st.local.b32	[%rd7+0], %r1;
            	ret;
            }
            """;
        string promoted = PtxLocalPromotion.Promote(two);
        string f = promoted[..promoted.IndexOf(".entry", StringComparison.Ordinal)];
        string k = promoted[promoted.IndexOf(".entry", StringComparison.Ordinal)..];
        Assert.Contains(".reg .b32 %lp0;", f);
        Assert.DoesNotContain("local", f);
        Assert.Contains(".local .align 4 .b8 __local_depot0[4];", k);
        Assert.Contains("st.local.b32\t[%rd7+0], %r1;", k);
        Assert.EndsWith("}", promoted.TrimEnd());
    }

    [Fact]
    public void PtxWithoutLocalsIsReturnedAsIs()
    {
        const string plain = ".entry k()\n{\n\tret;\n}\n";
        Assert.Same(plain, PtxLocalPromotion.Promote(plain));
    }
}
