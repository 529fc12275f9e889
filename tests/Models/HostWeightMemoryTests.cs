using Managed.Kernels.Layouts;
using Managed.Models;
using Xunit;

namespace Managed.Tests.Models;

/// <summary>Host weights copied into 2 MB-aligned memory: the same values, aligned, and no
/// access after Dispose.</summary>
public sealed class HostWeightMemoryTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(1000)]
    [InlineData(3 << 20)]   // spans more than one 2 MB page
    public unsafe void CopiesAlignedAndRefusesUseAfterDispose(int length)
    {
        var source = new BFloat16[length];
        for (int i = 0; i < length; i++) source[i] = BFloat16.FromSingle(i % 977 - 488.5f);
        var memory = new HostWeightMemory<BFloat16>(source);
        var span = memory.Memory.Span;
        Assert.True(span.SequenceEqual(source));
        fixed (BFloat16* p = span) Assert.Equal(0L, (long)p % (2 << 20));
        ((IDisposable)memory).Dispose();
        Assert.Throws<ObjectDisposedException>(() => memory.Memory.Span.Length);
        ((IDisposable)memory).Dispose(); // twice is harmless
    }
}
