using Managed.Kernels.Devices;
using Managed.Kernels.Registry;
using Managed.Tests.Kernels;
using Xunit;

namespace Managed.Tests.Registry;

/// <summary>Every registered mechanism's check cases against their fp64 references, on the
/// host and on ILGPU's CPU accelerator (the same cases <c>check</c> runs on every device).
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class MechanismRegistryTests(IlgpuCpuFixture fixture)
{
    /// <summary>The registry's names, for the theories.</summary>
    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var m in MechanismRegistry.All) data.Add(m.Name);
        return data;
    }

    [Fact]
    public void NamesAreUniqueAndIdsNameTheCatalog()
    {
        var names = MechanismRegistry.All.Select(m => m.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.All(MechanismRegistry.All, m => Assert.Matches("^[A-Z][0-9]+$", m.CatalogId));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void PassesOnTheHost(string name) => AssertPasses(ComputeDevice.Host, name);

    [Theory]
    [MemberData(nameof(Names))]
    public void PassesOnTheIlgpuCpuAccelerator(string name) =>
        AssertPasses(fixture.Backend.Device, name);

    /// <summary>A wrong output fails the rule (the verdict can fail).</summary>
    [Fact]
    public void VerdictFailsAPerturbedOutput()
    {
        var mechanism = MechanismRegistry.All[0];
        var result = mechanism.Run(ComputeDevice.Host, 1)[0];
        Assert.True(result.Verdict().Pass);
        var actual = (float[])result.Actual.Clone();
        actual[actual.Length / 2] += 1e-2f;
        Assert.False((result with { Actual = actual }).Verdict().Pass);
        actual[0] = float.NaN;
        Assert.False((result with { Actual = actual }).Verdict().Pass);
    }

    private static void AssertPasses(ComputeDevice device, string name)
    {
        var mechanism = MechanismRegistry.All.Single(m => m.Name == name);
        var results = mechanism.Run(device, 7);
        Assert.NotEmpty(results);
        foreach (var r in results)
        {
            var (worst, pass) = r.Verdict();
            Assert.True(pass, $"{name} {r.Label} on {device.Kind}: worst {worst:E2} over {r.Rtol:E0}");
        }
    }
}
