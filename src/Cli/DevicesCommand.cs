using Managed.Kernels.Backends;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>Lists the devices; with a folder (`--ptx-out DIR`, never implied) also compiles every
/// variant to PTX into it (no device needed).</summary>
internal static class DevicesCommand
{
    public static int Run(string? ptxDir, TextWriter output)
    {
        output.WriteLine("cpu-simd: always present");
        foreach (var kind in new[] { DeviceKind.Cuda, DeviceKind.OpenCL, DeviceKind.IlgpuCpu })
        {
            try
            {
                using var b = IlgpuBackend.Open(kind);
                output.WriteLine($"{kind}: {b.Name}");
            }
            catch (Exception e) { output.WriteLine($"{kind}: not available ({e.GetType().Name}: {e.Message})"); }
        }
        if (ptxDir is null) return 0;
        Directory.CreateDirectory(ptxDir);
        var v = new PtxWriter(ptxDir);
        foreach (var variant in VariantRegistry.All) variant.DeviceTyped.Accept(v);
        return 0;
    }

    private sealed class PtxWriter(string dir) : IVariantVisitor
    {
        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer
        {
            foreach (int dim in new[] { 64, 128, 256 })
                File.WriteAllText(Path.Combine(dir, $"{string.Concat(name.Select(ch => char.IsLetterOrDigit(ch) || ch == '-' ? ch : '_'))}-d{dim}.ptx"), KernelCompiler.CompilePtx<TScore, TMask, TNorm>(dim));
        }
    }
}
