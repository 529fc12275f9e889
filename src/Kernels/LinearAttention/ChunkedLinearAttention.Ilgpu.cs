using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.LinearAttention;

internal delegate void ChunkedLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
    ArrayView<float> logDecay, ArrayView<float> stateS, ArrayView<float> stateZ,
    ArrayView<float> output, ChunkedParams p);

// The ILGPU path: one launch of the chunked kernel; without a state, S and z are zeroed
// workspace scratch. Runs under the device's lease.
public static partial class ChunkedLinearAttention
{
    private const int SlotQuery = 0, SlotKey = 1, SlotValue = 2, SlotOutput = 3, SlotState = 4,
        SlotNormalizer = 5, SlotDecay = 6;

    internal static readonly MethodInfo KernelMethod =
        typeof(ChunkedLinearKernel).GetMethod(nameof(ChunkedLinearKernel.Run))!;

    private static void RunIlgpu(ComputeDevice device, ChunkedPlan plan, ArrayView<float> query,
        ArrayView<float> key, ArrayView<float> value, ReadOnlySpan<float> decay,
        ArrayView<float> output, LinearAttentionState? state)
    {
        var shape = plan.Shape;
        var accelerator = device.Ilgpu;
        var stream = accelerator.DefaultStream;
        var ws = device.Workspace;
        ArrayView<float> s, z;
        if (state is not null)
        {
            s = state.DeviceS;
            z = state.DeviceZ;
        }
        else
        {
            s = ws.Get<float>(SlotState, shape.StateLength);
            z = ws.Get<float>(SlotNormalizer, (long)shape.Batch * shape.KvHeads * shape.Features);
            s.MemSetToZero(stream);
            z.MemSetToZero(stream);
        }
        // ln lambda per KV head (0: no decay), uploaded in stream order.
        Span<float> logDecay = stackalloc float[Math.Min(shape.KvHeads, 256)];
        var dDecay = ws.Get<float>(SlotDecay, shape.KvHeads);
        if (shape.KvHeads > 256) logDecay = new float[shape.KvHeads];
        for (int i = 0; i < shape.KvHeads; i++)
            logDecay[i] = decay.IsEmpty || decay[i] == 1f ? 0f : MathF.Log(decay[i]);
        StagedUpload.Copy(accelerator, (ReadOnlySpan<float>)logDecay, dDecay);
        int columnBlocks = (shape.ValueDim + ChunkedLinearKernel.Threads - 1)
            / ChunkedLinearKernel.Threads;
        var p = new ChunkedParams(shape, plan.Chunk, plan.Causal, plan.Normalize, columnBlocks);
        var config = new KernelConfig(shape.Batch * shape.KvHeads * columnBlocks,
            ChunkedLinearKernel.Threads);
        var launch = device.Kernels.Get<ChunkedLauncher>(KernelMethod);
        launch(stream, config, query, key, value, dDecay, s, z, output, p);
    }
}
