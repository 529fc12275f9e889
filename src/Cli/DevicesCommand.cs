using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>Lists the devices; with a folder (`--ptx-out DIR`, never implied) also compiles every
/// variant to PTX into it (no device needed).</summary>
internal static class DevicesCommand
{
    public static int Run(string? ptxDir, TextWriter output)
    {
        foreach (var device in ComputeDevice.List()) output.WriteLine(device);
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
