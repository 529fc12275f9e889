using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Managed.Kernels.Devices;

namespace Managed.Kernels.LinearAttention;

internal delegate void ChunkStatesLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> key, ArrayView<float> value, ArrayView<float> logDecay,
    ArrayView<float> chunkS, ArrayView<float> chunkZ, ChunkedParams p);

internal delegate void ScanStatesLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> logDecay, ArrayView<float> chunkS, ArrayView<float> chunkZ,
    ArrayView<float> stateS, ArrayView<float> stateZ, ChunkedParams p);

internal delegate void ChunkOutputsLauncher(AcceleratorStream stream, KernelConfig config,
    ArrayView<float> query, ArrayView<float> key, ArrayView<float> value,
    ArrayView<float> logDecay, ArrayView<float> chunkS, ArrayView<float> chunkZ,
    ArrayView<float> stateS, ArrayView<float> stateZ, ArrayView<float> output, ChunkedParams p);

// The ILGPU path: segments of chunks, each three launches (chunk states, scan, outputs); the
// chunk states of a segment live in one workspace slot of at most SegmentFloats floats. Without
// a state, S and z are zeroed workspace scratch. Runs under the device's lease.
public static partial class ChunkedLinearAttention
{
    private const int SlotQuery = 0, SlotKey = 1, SlotValue = 2, SlotOutput = 3, SlotState = 4,
        SlotNormalizer = 5, SlotDecay = 6, SlotChunks = 7;

    /// <summary>Most floats of chunk states held at once (512 MiB); longer calls run in
    /// segments that carry the state.</summary>
    private const long SegmentFloats = 1L << 27;

    internal static readonly MethodInfo ChunkStatesMethod = Kernel(nameof(ChunkedLinearKernel.ChunkStates));
    internal static readonly MethodInfo ScanStatesMethod = Kernel(nameof(ChunkedLinearKernel.ScanStates));
    internal static readonly MethodInfo ChunkOutputsMethod = Kernel(nameof(ChunkedLinearKernel.ChunkOutputs));

    private static MethodInfo Kernel(string name) => typeof(ChunkedLinearKernel).GetMethod(name)!;

    private static void RunIlgpu(ComputeDevice device, ChunkedPlan plan, ArrayView<float> query,
        ArrayView<float> key, ArrayView<float> value, ReadOnlySpan<float> decay,
        ArrayView<float> output, LinearAttentionState? state)
    {
        var shape = plan.Shape;
        var accelerator = device.Ilgpu;
        var stream = accelerator.DefaultStream;
        var ws = device.Workspace;
        int items = shape.Batch * shape.KvHeads, f = shape.Features, dv = shape.ValueDim;
        ArrayView<float> s, z;
        if (state is not null)
        {
            s = state.DeviceS;
            z = state.DeviceZ;
        }
        else
        {
            s = ws.Get<float>(SlotState, shape.StateLength);
            z = ws.Get<float>(SlotNormalizer, (long)items * f);
            s.MemSetToZero(stream);
            z.MemSetToZero(stream);
        }
        // ln lambda per KV head (0: no decay), uploaded in stream order.
        Span<float> logDecay = shape.KvHeads <= 256 ? stackalloc float[shape.KvHeads]
            : new float[shape.KvHeads];
        var dDecay = ws.Get<float>(SlotDecay, shape.KvHeads);
        for (int i = 0; i < shape.KvHeads; i++)
            logDecay[i] = decay.IsEmpty || decay[i] == 1f ? 0f : MathF.Log(decay[i]);
        StagedUpload.Copy(accelerator, (ReadOnlySpan<float>)logDecay, dDecay);

        int chunks = (shape.Length + plan.Chunk - 1) / plan.Chunk;
        long perChunk = (long)items * f * (dv + 1);
        int segment = (int)Math.Clamp(SegmentFloats / perChunk, 1, chunks);
        var buffer = ws.Get<float>(SlotChunks, perChunk * segment);
        var chunkS = buffer.SubView(0, (long)items * segment * f * dv);
        var chunkZ = buffer.SubView(chunkS.Length, (long)items * segment * f);
        // O2 keeps the register tiles in registers (KernelCache.Get): at ILGPU's default O1 the
        // output kernel took 255 registers per thread and ran 1.08-1.13x slower.
        const OptimizationLevel O2 = OptimizationLevel.O2;
        var states = device.Kernels.Get<ChunkStatesLauncher>(ChunkStatesMethod, O2);
        var scan = device.Kernels.Get<ScanStatesLauncher>(ScanStatesMethod, O2);
        var outputs = device.Kernels.Get<ChunkOutputsLauncher>(ChunkOutputsMethod, O2);
        int valueTiles = (dv + ChunkedLinearKernel.Tile - 1) / ChunkedLinearKernel.Tile;
        int featureTiles = (f + ChunkedLinearKernel.Tile - 1) / ChunkedLinearKernel.Tile;
        int threads = ChunkedLinearKernel.Threads;
        int scanGroups = checked((int)((perChunk + threads - 1) / threads));
        void States(ChunkedParams p, int count)
        {
            states(stream, new KernelConfig(checked(items * count * featureTiles * valueTiles),
                threads), key, value, dDecay, chunkS, chunkZ, p);
            scan(stream, new KernelConfig(scanGroups, threads), dDecay, chunkS, chunkZ, s, z, p);
        }
        void Outputs(ChunkedParams p, int count) =>
            outputs(stream, new KernelConfig(
                checked(shape.Batch * shape.Heads * count), threads),
                query, key, value, dDecay, chunkS, chunkZ, s, z, output, p);
        // Causal: each segment's states, then its outputs. Non-causal: every segment summed
        // into S and z first, then the outputs read the total.
        for (int pass = 0; pass < (plan.Causal ? 1 : 2); pass++)
            for (int first = 0; first < chunks; first += segment)
            {
                int count = Math.Min(segment, chunks - first);
                var p = new ChunkedParams(shape, plan.Chunk, plan.Causal, plan.Normalize, first,
                    count);
                if (pass == 0) States(p, count);
                if (plan.Causal || pass == 1) Outputs(p, count);
            }
    }
}
