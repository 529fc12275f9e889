using System.Diagnostics;
using System.Reflection;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Tests.Support;
using Managed.Kernels.Simd;
using Managed.Kernels.Variants;
using Xunit;

namespace Managed.Tests.Kernels;

/// <summary>
/// The CPU hot path runs optimized code from its first call. Under tiered compilation a method
/// starts as unoptimized tier-0 code and is recompiled only after 30 calls (and a delay); a
/// method with loops called once per row (the vector tanh of soft-capping) then ran up to 20x
/// slower for the first calls of a shape. Every method the CPU kernel's items call is either
/// [AggressiveOptimization] (compiled optimized at once) or [AggressiveInlining] (inlined into
/// those optimized callers); the set below is closed under those calls, starting at the
/// kernel's Item, which is [AggressiveOptimization] itself.
/// </summary>
public sealed class HotPathOptimizationTests
{
    private static readonly Assembly Kernels = typeof(FlashAttention).Assembly;

    /// <summary>The hot-path methods: every method of VectorMath, MicroKernels and the CPU
    /// kernel's Job, every score modifier's ApplyRow and every normalizer's Weight.</summary>
    private static IEnumerable<MethodInfo> HotMethods()
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static
            | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        // The CPU kernel's work-item struct, found by name: its arity follows the kernel's
        // generic parameters.
        var job = Kernels.GetTypes().Single(t => t.Name == "Job"
            && t.DeclaringType?.Name.StartsWith("CpuKernel", StringComparison.Ordinal) == true);
        foreach (var type in new[] { typeof(VectorMath), typeof(MicroKernels<,>), job })
            foreach (var m in type.GetMethods(all))
                yield return m;
        foreach (var type in Kernels.GetTypes().Where(t => t.IsValueType))
        {
            if (typeof(IScoreModifier).IsAssignableFrom(type))
                yield return type.GetMethod(nameof(IScoreModifier.ApplyRow))!;
            if (typeof(INormalizer).IsAssignableFrom(type))
                yield return type.GetMethod(nameof(INormalizer.Weight))!;
        }
    }

    [Fact]
    public void HotPathMethodsAreOptimizedOrInlined()
    {
        var methods = HotMethods().ToArray();
        Assert.True(methods.Length > 20, $"only {methods.Length} hot methods found");
        var missing = methods.Where(m =>
                (m.MethodImplementationFlags & (MethodImplAttributes.AggressiveOptimization
                    | MethodImplAttributes.AggressiveInlining)) == 0)
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}").Distinct().ToArray();
        Assert.True(missing.Length == 0,
            "neither AggressiveOptimization nor AggressiveInlining: " + string.Join(", ", missing));
    }

    /// <summary>Methods with loops cannot rely on inlining (the JIT may decline): those in
    /// VectorMath that take spans are compiled optimized at once.</summary>
    [Fact]
    public void VectorMathSpanMethodsAreOptimized()
    {
        var spanMethods = typeof(VectorMath)
            .GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Where(m => m.GetParameters().Any(p => p.ParameterType.Name.Contains("Span")))
            .ToArray();
        Assert.NotEmpty(spanMethods);
        foreach (var m in spanMethods)
        {
            var parameters = string.Join(", ", m.GetParameters().Select(p => p.ParameterType.Name));
            Assert.True(
                m.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization),
                $"VectorMath.{m.Name}({parameters})");
        }
    }
}

/// <summary>Timing tests run alone: a concurrent test class would take their cores.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Timing";
}

/// <summary>
/// The symptom itself, timed: soft-capped causal attention (N = 512, 8 heads, D = 16, where
/// the tanh is a large share of the work) against plain causal attention of the same shape,
/// both in their first calls. The first call of each is not compared: it includes compiling
/// the kernel (hundreds of ms on a shared 2-core machine). Calls 2-6 of both, interleaved, each
/// side's fastest: with tier-0 code in the tanh, soft-capping took 15-25x causal; optimized,
/// 2-3x. The bound is 8x. It is meaningful only in a process where nothing has called the
/// soft-capped kernel before (tiered-up code hides the defect; it cannot cause a failure).
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class FirstCallTimingTests
{
    private static readonly CausalMask Mask = default;

    [Fact]
    public void FirstCallsOfSoftcapRunNearSteadyStateSpeed()
    {
        var shape = AttentionShape.Self(1, 8, 512, 16);
        var random = new Random(1);
        float[] Fill(long n) =>
            Enumerable.Range(0, (int)n).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        float[] q = Fill(shape.QueryLength), k = Fill(shape.KeyLength), v = Fill(shape.ValueLength);
        var o = new float[shape.OutputLength];
        void Causal() =>
            HostAttention.Forward(shape, q, k, v, o, default, default(NoScore), Mask);
        void Softcap() =>
            HostAttention.Forward(shape, q, k, v, o, default, new SoftcapScore(30f), Mask);
        static double Ms(Action call)
        {
            long t0 = Stopwatch.GetTimestamp();
            call();
            return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Ms(Causal);
        Ms(Softcap);
        double causal = double.MaxValue, softcap = double.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            causal = Math.Min(causal, Ms(Causal));
            softcap = Math.Min(softcap, Ms(Softcap));
        }
        Assert.True(softcap <= 8 * causal,
            $"calls 2-6: softcap {softcap:F2} ms, causal {causal:F2} ms ({softcap / causal:F1}x)");
    }
}
