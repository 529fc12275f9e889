using System.Runtime.Intrinsics;
using Managed.Kernels.Devices;
using Managed.Kernels.Layouts;
using Managed.Kernels.Simd;

namespace Managed.Kernels.Matmul;

// The host path: output features split into parts over threads; a GEMV pass for a few rows,
// the blocked GEMM for more (HostLinear).
public static partial class Linear
{
    /// <summary>Below this many multiply-adds a call on the thread pool runs on the calling
    /// thread: waking pool workers costs more than the work saves. Measured with the shipped
    /// model (hidden 256, weights in cache; 2 Zen 5 cores, interleaved runs): batch 8 decode
    /// 1.9-2.1k tokens/s at 2^18, 2.5-2.6k at 2^21; batch 1 the same. A 1 B model's
    /// matrices stay parallel.</summary>
    public const long PoolSerialWork = 1 << 21;

    /// <summary>Below this many multiply-adds a call given <see cref="HostWorkers"/> runs
    /// on the calling thread (spinning workers start in well under a microsecond).</summary>
    public const long WorkersSerialWork = 1 << 15;

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
        int threads = work < (plan.Workers is null ? PoolSerialWork : WorkersSerialWork)
            ? 1 : Math.Min(plan.Threads, parts);
        if (threads <= 1)
            for (int p = 0; p < parts; p++) job.Run(p);
        else if (plan.Workers is { } workers)
            workers.For(parts, job.Run);
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
