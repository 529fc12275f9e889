using Managed.Kernels;
using Managed.Kernels.Backends;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>Owns the host backend for the test collection (the role an accelerator fixture plays for ILGPU).</summary>
public sealed class HostBackendFixture : IDisposable
{
    /// <summary>The host SIMD backend with default tuning.</summary>
    public IKernelBackend Backend { get; } = new HostBackend();

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
    protected override IKernelBackend Backend => fixture.Backend;

    /// <summary>The default tuning's tiles (QueryTile 32, KeyTile 64).</summary>
    protected override (int QueryTile, int KeyTile) TileSizes(AttentionShape shape) =>
        (FlashAttentionTuning.Default.QueryTile, FlashAttentionTuning.Default.KeyTile);
}
