using Managed.Kernels.Devices;

namespace Managed.Kernels.Registry;

/// <summary>
/// A catalog mechanism built from the kernels (linear, recurrent or two-stage attention), as
/// <c>check</c> and the tests run it: inputs of a few small shapes drawn from a seed (learned
/// parts made at random), the mechanism on a device, and its fp64 reference (written apart
/// from the kernels, in <c>Managed.Kernels.Reference</c>) on the same inputs.
/// </summary>
public interface IMechanism
{
    /// <summary>The name <c>check</c> prints, e.g. "lightning" or "based-w16".</summary>
    string Name { get; }

    /// <summary>The mechanism's ID in the catalog (shared/CATALOG.md), e.g. "L1" or "E3".
    /// </summary>
    string CatalogId { get; }

    /// <summary>Runs every case on <paramref name="device"/>: one result per case, each with
    /// the device's output and the fp64 reference's on the same inputs.</summary>
    IReadOnlyList<MechanismResult> Run(ComputeDevice device, int seed);
}
