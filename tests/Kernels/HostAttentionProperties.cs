using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Xunit;
using Managed.Tests.Support;

namespace Managed.Tests.Kernels;

/// <summary>Owns the host backend for the test collection (the role an accelerator fixture plays for ILGPU).</summary>
public sealed class HostBackendFixture : IDisposable
{
    /// <summary>The host SIMD backend with default tuning.</summary>
    public TestDevice Backend { get; } = new TestDevice(ComputeDevice.Open(DeviceKind.Host));

    /// <inheritdoc/>
    public void Dispose() => Backend.Dispose();
}

/// <summary>Binds <see cref="HostBackendFixture"/> to the "HostBackend" collection.</summary>
[CollectionDefinition(Name)]
public sealed class HostBackendCollection : ICollectionFixture<HostBackendFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "HostBackend";
}

/// <summary>The backend properties on the host SIMD kernels.</summary>
[Collection(HostBackendCollection.Name)]
public sealed class HostAttentionProperties(HostBackendFixture fixture) : AttentionPropertiesBase
{
    /// <inheritdoc/>
    protected override TestDevice Backend => fixture.Backend;

    /// <summary>The default tuning's tiles (QueryTile 32, KeyTile 64).</summary>
    protected override (int QueryTile, int KeyTile) TileSizes(AttentionShape shape) =>
        (AttentionTuning.Default.QueryTile, AttentionTuning.Default.KeyTile);
}
