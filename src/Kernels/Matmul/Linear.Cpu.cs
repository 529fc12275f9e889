using System.Runtime.Intrinsics;
using Managed.Kernels.Layouts;
using Managed.Kernels.Simd;

namespace Managed.Kernels.Matmul;

// The host path: output features split into parts over threads; a GEMV pass for a few rows,
// the blocked GEMM for more (HostLinear).
public static partial class Linear
{
    /// <summary>Below this many multiply-adds a call runs on the calling thread: waking
    /// workers (about 10 us with two threads) costs more than the work saves (262k bf16
    /// multiply-adds take about 15 us on one Zen 5 core from L2).</summary>
    private const long SerialWork = 1 << 18;

    private static unsafe void ForwardHost<TElement, TStorage>(LinearPlan plan,
        ReadOnlySpan<float> x, ReadOnlySpan<TStorage> weight, ReadOnlySpan<float> bias,
        Span<float> y)
        where TElement : struct, IElement<TStorage>
        where TStorage : unmanaged
    {
        fixed (float* px = x)
        fixed (TStorage* pw = weight)
        fixed (float* pb = bias)
        fixed (float* py = y)
        {
            float* b = plan.HasBias ? pb : null;
            switch (SimdSelect.Resolve(plan.Simd))
            {
                case SimdWidth.V512:
                    RunHost(new HostLinear<TElement, TStorage, Simd512, Vector512<float>,
                        Widen512>(plan, px, pw, b, py), plan);
                    break;
                case SimdWidth.V256:
                    RunHost(new HostLinear<TElement, TStorage, Simd256, Vector256<float>,
                        Widen256>(plan, px, pw, b, py), plan);
                    break;
                default:
                    RunHost(new HostLinear<TElement, TStorage, Simd128, Vector128<float>,
                        Widen128>(plan, px, pw, b, py), plan);
                    break;
            }
        }
    }

    private static void RunHost(IHostLinear job, LinearPlan plan)
    {
        int parts = job.Parts;
        long work = (long)plan.M * plan.N * plan.K;
        int threads = work < SerialWork ? 1 : Math.Min(plan.Threads, parts);
        if (threads <= 1)
            for (int p = 0; p < parts; p++) job.Run(p);
        else
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = threads },
                job.Run);
    }
}

/// <summary>One host call split into parts (ranges of output features).</summary>
internal interface IHostLinear
{
    int Parts { get; }

    void Run(int part);
}
