using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;

namespace Managed.Tests.Kernels;

// Bad input: an ArgumentException that names the argument, thrown before anything is written.
public abstract partial class AttentionPropertiesBase
{
    [Property(MaxTest = 200)]
    public Property BadInputThrowsBeforeWritingAnything() =>
        Prop.ForAll(Cases, Gen.Choose(0, BadCall.Kinds - 1).ToArbitrary(), (c, kind) =>
        {
            var bad = BadCall.Make(c, kind, c.Random(4));
            bad.AssertRejected(c, VariantOf(c), (q, k, v, o, l) =>
                Backend.Run(VariantOf(c), bad.Shape, q, k, v, o, l, bad.Options));
        });
}
