using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Devices;

namespace Managed.Tests.Matmul;

/// <summary>Random shapes on the host: m 1..24 (both kernels), n 1..70 and k 1..300 (every
/// remainder of the vector, panel and chunk widths), each weight type, bias or not.</summary>
public sealed class LinearProperties : IDisposable
{
    // Three threads on any machine: parts really are shared, more threads than cores too.
    private readonly HostWorkers _workers = new(3);

    private static readonly Gen<LinearCase> Cases =
        from m in Gen.Choose(1, 24)
        from n in Gen.Choose(1, 70)
        from k in Gen.Choose(1, 300)
        from type in Gen.Elements(Enum.GetValues<WeightType>())
        from bias in Gen.Elements(false, true)
        from seed in Gen.Choose(0, int.MaxValue)
        select new LinearCase(m, n, k, type, bias, seed);

    [Property(MaxTest = 150)]
    public Property HostMatchesReference() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
            LinearTests.Check(c, ComputeDevice.Host, default));

    /// <summary>The same on a team of workers: calls of 2^15 multiply-adds and more are
    /// split over them.</summary>
    [Property(MaxTest = 100)]
    public Property HostOnWorkersMatchesReference() =>
        Prop.ForAll(Cases.ToArbitrary(), c =>
            LinearTests.Check(c, ComputeDevice.Host, new() { Workers = _workers }));

    public void Dispose() => _workers.Dispose();
}
