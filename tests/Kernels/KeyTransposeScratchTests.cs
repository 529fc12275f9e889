using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>The CPU kernel's key transposes are bounded after a call: a call whose transposes
/// exceed <see cref="KeyTransposeScratch.KeptBytes"/> gives them back (a pooled array used to
/// keep them: 256 MB after one call with 2^20 keys at D = 64). Run alone: a concurrent host
/// call could take the kept block between two steps of a test.</summary>
[Collection(TimingCollection.Name)]
public class KeyTransposeScratchTests
{
    [Fact]
    public void ALongCallKeepsAtMostTheBoundAfterItReturns()
    {
        // One query row over 2^18 keys at D = 64: 64 MB of transposes plus a partial tile.
        var shape = new AttentionShape(1, 1, 1, 1, (1 << 18) + 100, 64, 8);
        var q = new float[shape.QueryLength];
        var k = new float[shape.KeyLength];
        var v = new float[shape.ValueLength];
        var o = new float[shape.OutputLength];
        q[0] = 1f;
        for (int i = 0; i < v.Length; i++) v[i] = i % 7;
        FlashAttention.Forward(ComputeDevice.Host, shape, q, k, v, o, default, default(NoScore),
            default(NoMask), default(SoftmaxNormalizer));
        Assert.True(KeyTransposeScratch.HeldBytes <= KeyTransposeScratch.KeptBytes,
            $"{KeyTransposeScratch.HeldBytes} bytes kept");
        // All keys are zero: uniform weights, so the output is the mean of each value column.
        for (int c = 0; c < shape.ValueDim; c++)
        {
            double mean = 0;
            for (int j = 0; j < shape.SeqK; j++) mean += v[j * shape.ValueDim + c];
            mean /= shape.SeqK;
            Assert.True(Math.Abs(o[c] - mean) <= 1e-4 + 1e-4 * Math.Abs(mean), $"column {c}");
        }
    }

    [Fact]
    public void ASmallBlockIsKeptForTheNextCall()
    {
        var block = KeyTransposeScratch.Rent(1 << 20);
        KeyTransposeScratch.Return(block);
        Assert.True(KeyTransposeScratch.HeldBytes >= 1 << 20);
        var again = KeyTransposeScratch.Rent(1 << 20);
        Assert.Equal(block.Pointer, again.Pointer);
        KeyTransposeScratch.Return(again);
    }
}
