using System.Reflection;
using Managed.Kernels.Variants;
using Xunit;
using Managed.Kernels.Registry;

namespace Managed.Tests.Variants;

/// <summary>
/// Variant structs are kernel parameters, and the CUDA launcher copies them bit for bit: a
/// field of a non-blittable type (bool, char) makes the launch throw "not blittable" on the
/// GPU, while ILGPU's CPU accelerator accepts it. This catches it without a GPU.
/// </summary>
public class VariantBlittabilityTests
{
    public static TheoryData<string> Names() => new(VariantRegistry.All.Select(v => v.Name));

    [Theory]
    [MemberData(nameof(Names))]
    public void OperatorStructsAreBlittable(string name)
    {
        var variant = VariantRegistry.All.Single(v => v.Name == name);
        var probe = new Probe();
        variant.DeviceTyped.Accept(probe); // the types a device launch gets (tables as views)
        Assert.Empty(probe.Problems);
    }

    private sealed class Probe : IVariantVisitor
    {
        public List<string> Problems { get; } = [];

        public void Visit<TScore, TMask, TNorm>(string name, TScore score, TMask mask, TNorm norm)
            where TScore : struct, IScoreModifier where TMask : struct, IMaskPredicate
            where TNorm : struct, INormalizer
        {
            Check(typeof(TScore), typeof(TScore).Name);
            Check(typeof(TMask), typeof(TMask).Name);
            Check(typeof(TNorm), typeof(TNorm).Name);
        }

        private void Check(Type type, string path)
        {
            foreach (var f in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            {
                var t = f.FieldType;
                // ILGPU passes views nested in argument structs as device pointers.
                if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(ILGPU.ArrayView<>)) continue;
                if (t == typeof(bool) || t == typeof(char) || !t.IsValueType)
                    Problems.Add($"{path}.{f.Name}: {t.Name}");
                else if (!t.IsPrimitive && !t.IsEnum)
                    Check(t, $"{path}.{f.Name}");
            }
        }
    }
}
