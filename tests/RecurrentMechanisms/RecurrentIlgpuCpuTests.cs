using Managed.Kernels.Devices;
using Managed.Tests.Kernels;
using Xunit;

namespace Managed.Tests.RecurrentMechanisms;

/// <summary>
/// The EMA kernel, Mega-chunk (EMA kernel, Linear and FlashAttention with a device bias
/// table) and the Titans memory kernel on ILGPU's CPU accelerator, against the same fp64
/// references as the host tests. Tiny shapes: each launch emulates the GPU thread by thread.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class RecurrentIlgpuCpuTests(IlgpuCpuFixture fixture)
{
    private ComputeDevice Device => fixture.Backend.Device;

    [Fact]
    public void EmaMatchesRecurrence()
    {
        RecurrentChecks.EmaMatchesRecurrence(Device, new(1, 1, 1, 1), 100);
        RecurrentChecks.EmaMatchesRecurrence(Device, new(2, 33, 5, 3), 101);
        RecurrentChecks.EmaMatchesRecurrence(Device, new(1, 20, 40, 32), 102, false);
    }

    [Theory]
    [InlineData(2, 37, 12, 8, 16, 4, 16)]
    [InlineData(1, 20, 6, 5, 7, 3, 1)]
    [InlineData(1, 23, 8, 4, 8, 2, 23)]
    public void MegaMatchesReference(int batch, int length, int dim, int z, int h, int m,
        int chunk) =>
        RecurrentChecks.MegaMatchesReference(Device, new(batch, length, dim, z, h, m), chunk,
            110);

    [Theory]
    [InlineData(1, 1, 1, 1, 1, 1)]
    [InlineData(2, 2, 45, 8, 6, 16)]
    [InlineData(1, 3, 17, 5, 7, 4)]
    [InlineData(1, 2, 9, 4, 4, 100)]
    public void TitansMatchesChunkedReference(int batch, int heads, int length, int dk, int dv,
        int chunk) =>
        RecurrentChecks.TitansMatchesChunkedReference(Device,
            new(batch, heads, length, dk, dv), chunk, 120);

    [Fact]
    public void TitansChunkOneIsTheRecurrence() =>
        RecurrentChecks.TitansChunkOneIsRecurrence(Device, new(2, 2, 21, 6, 5), 121);

    [Fact]
    public void TitansStateContinuesAcrossCalls() =>
        RecurrentChecks.TitansStateContinues(Device, new(1, 2, 29, 6, 5), 4, 12, 122);

    [Theory]
    [InlineData(1, 1, 1, 1, 1, 1, 1)]
    [InlineData(2, 2, 29, 6, 10, 5, 8)]
    [InlineData(1, 2, 17, 4, 3, 7, 1)]
    [InlineData(1, 1, 12, 5, 20, 4, 100)]
    public void TitansMlpMatchesReference(int batch, int heads, int length, int dk, int dh,
        int dv, int chunk) =>
        RecurrentChecks.TitansMlpMatchesReference(Device,
            new(batch, heads, length, dk, dh, dv), chunk, 130);

    [Fact]
    public void TitansMlpStateContinuesAcrossCalls() =>
        RecurrentChecks.TitansMlpStateContinues(Device, new(2, 1, 21, 5, 6, 4), 4, 8, 131);

    [Fact]
    public void TitansMagMatchesReference()
    {
        RecurrentChecks.TitansMagMatchesReference(Device, new(2, 2, 37, 8, 6, 5, 4, 8), 8, 150);
        RecurrentChecks.TitansMagMatchesReference(Device, new(1, 2, 21, 6, 4, 5, 3, 5), 4, 151,
            memoryOff: true);
    }
}
