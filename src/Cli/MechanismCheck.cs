using Managed.Kernels.Devices;
using Managed.Kernels.Registry;

namespace Managed.Cli;

/// <summary>
/// The catalog mechanisms (<see cref="MechanismRegistry"/>: linear, recurrent and two-stage
/// attention) on one device, every case against its fp64 reference. Pass rule
/// <see cref="MechanismResult.Verdict"/>: |out - ref| &lt;= rtol (|ref| + mean |ref|).
/// </summary>
internal static class MechanismCheck
{
    public static (int Checked, int Failed) Run(ComputeDevice device, TextWriter output)
    {
        int count = 0, failed = 0;
        foreach (var mechanism in MechanismRegistry.All)
            foreach (var r in mechanism.Run(device, 17))
            {
                var (worst, ok) = r.Verdict();
                count++;
                if (!ok) failed++;
                output.WriteLine($"{"mechanism/" + mechanism.CatalogId + " " + mechanism.Name,-34} "
                    + $"{device.Kind,-10} {r.Label,-52} {worst,10:E2}  {(ok ? "pass" : "FAIL")}");
            }
        return (count, failed);
    }
}
