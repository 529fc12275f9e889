using Managed.Kernels.Registry.Mechanisms;

namespace Managed.Kernels.Registry;

/// <summary>
/// The catalog mechanisms the library ships beside the attention variants: linear, recurrent
/// and two-stage attention, each with its check cases (<see cref="IMechanism"/>). <c>check</c>
/// and the tests enumerate this list, so a new mechanism is one line here plus its entry.
/// </summary>
public static class MechanismRegistry
{
    /// <summary>Every registered mechanism, in catalog order.</summary>
    public static IReadOnlyList<IMechanism> All { get; } =
    [
        new LightningMechanism(),
        new BasedMechanism(),
        new HedgehogMechanism(),
        new AgentMechanism(),
        new FlowMechanism(),
        new InLineMechanism(),
        new InLineLocalMechanism(),
        new MalaMechanism(),
        new RalaMechanism(),
        new L2VitMechanism(),
        new CenteredPolynomialMechanism(2),
        new CenteredPolynomialMechanism(1),
        new MegaMechanism(),
        new TitansMechanism(),
        new TitansMlpMechanism(),
        new TitansMagMechanism(),
        new InducedSetMechanism(),
        new PrefixScanMechanism(),
    ];
}
