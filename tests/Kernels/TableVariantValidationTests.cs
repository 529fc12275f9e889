using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using ILGPU.Runtime;
using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;
using Managed.Tests.Generators;
using Managed.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Managed.Tests.Kernels;

/// <summary>
/// One table that does not fit the call: too short for the shape, built for another seqK or
/// another head count, covering too few keys, ids declared sorted that decrease, a layout
/// entry outside 0..2. <see cref="MessageParts"/>: what the message must mention (the
/// operator, the numbers). <see cref="HostOnly"/>: only host tables are checked (the data of a
/// device table cannot be read; its caller vouches for it).
/// </summary>
public sealed record BadTable(string Description, TableOp Op, AttentionCase Case, string[] MessageParts, bool HostOnly = false)
{
    /// <summary>Number of kinds <see cref="Make"/> knows.</summary>
    public const int Kinds = 14;

    /// <summary>The <paramref name="kind"/>-th way to break a table for <paramref name="c"/>
    /// (the case may be changed where the kind needs seqK &gt;= 2).</summary>
    public static BadTable Make(AttentionCase c, int kind)
    {
        var r = c.Random(60 + kind);
        if (kind is 2 or 7 && c.Shape.SeqK < 2) c = c with { Shape = c.Shape with { SeqK = 2 + r.Next(10) } };
        var s = c.Shape;
        int positions = Math.Max(s.SeqQ, s.SeqK);
        bool causal = r.Next(2) == 0;
        switch (kind)
        {
            case 0:
            {
                int need = s.Batch * s.SeqK, length = need - r.Next(1, s.SeqK + 1);
                return new("ids too short", TableOps.DocIds(TableData.SortedIds(r, s.Batch, s.SeqK)[..length], s.SeqK, true, causal), c,
                    ["DocumentIdMask", $"{length}", $"{need}"]);
            }
            case 1:
            {
                int other = s.SeqK == 1 || r.Next(2) == 0 ? s.SeqK + r.Next(1, 5) : s.SeqK - r.Next(1, s.SeqK);
                return new($"ids built for seqK {other}", TableOps.DocIds(TableData.SortedIds(r, s.Batch, other), other, true, causal), c,
                    ["DocumentIdMask", $"seqK {other}", $"seqK {s.SeqK}"]);
            }
            case 2:
            {
                var ids = TableData.SortedIds(r, s.Batch, s.SeqK);
                int b = r.Next(s.Batch), k = r.Next(1, s.SeqK);
                ids[b * s.SeqK + k] = ids[b * s.SeqK + k - 1] - r.Next(1, 4);
                return new($"ids decrease at [{b}, {k}]", TableOps.DocIds(ids, s.SeqK, true, causal), c,
                    ["DocumentIdMask", "non-decreasing"], HostOnly: true);
            }
            case 3:
            {
                int prefix = r.Next(0, s.SeqK), nodes = s.SeqK - prefix, need = nodes * ((nodes + 31) / 32);
                int length = need - r.Next(1, need + 1);
                var ancestors = TreeMasks.Ancestors(TableData.Parents(r, nodes))[..length];
                return new("ancestors too short", TableOps.Tree(ancestors, prefix, nodes), c, ["TreeMask", $"{length}", $"{nodes} nodes"]);
            }
            case 4:
            {
                int prefix = r.Next(0, s.SeqK), nodes = s.SeqK - prefix;
                nodes = nodes == 1 || r.Next(2) == 0 ? nodes + r.Next(1, 5) : nodes - r.Next(1, nodes);
                return new($"tree of prefix {prefix} + {nodes} nodes", TableOps.Tree(TreeMasks.Ancestors(TableData.Parents(r, nodes)), prefix, nodes), c,
                    ["TreeMask", $"{prefix + nodes} keys", $"seqK {s.SeqK}"]);
            }
            case 5:
            {
                var (heads, qBlocks, kBlocks, blockQ, blockK) = Blocks(r, s, positions);
                int need = heads * qBlocks * kBlocks, length = need - r.Next(1, need + 1);
                return new("layout too short", TableOps.Block(TableData.Layout(r, length, false), default(CausalMask), heads, qBlocks, kBlocks, blockQ, blockK), c,
                    ["BlockMask", $"{length} entries", $"{need} are needed"]);
            }
            case 6:
            {
                var (_, qBlocks, kBlocks, blockQ, blockK) = Blocks(r, s, positions);
                int heads = s.Heads + r.Next(1, 3);
                return new($"layout of {heads} heads", TableOps.Block(TableData.Layout(r, heads * qBlocks * kBlocks, false), default(NoMask), heads, qBlocks, kBlocks, blockQ, blockK), c,
                    ["BlockMask", $"{heads} layout heads", $"{s.Heads} heads"]);
            }
            case 7:
            {
                int blockK = r.Next(1, s.SeqK), kBlocks = (s.SeqK - 1) / blockK, blockQ = TableData.BlockSize(r);
                int qBlocks = (positions + blockQ - 1) / blockQ;
                return new($"layout of {kBlocks} x {blockK} keys", TableOps.Block(TableData.Layout(r, qBlocks * kBlocks, false), default(CausalMask), 1, qBlocks, kBlocks, blockQ, blockK), c,
                    ["BlockMask", $"{kBlocks} x {blockK} keys", $"seqK {s.SeqK}"]);
            }
            case 8:
            {
                var (heads, qBlocks, kBlocks, blockQ, blockK) = Blocks(r, s, positions);
                var layout = TableData.Layout(r, heads * qBlocks * kBlocks, false);
                int at = r.Next(layout.Length), value = new[] { 3, -1, 255, int.MinValue, int.MaxValue }[r.Next(5)];
                layout[at] = value;
                return new($"layout[{at}] = {value}", TableOps.Block(layout, default(CausalMask), heads, qBlocks, kBlocks, blockQ, blockK), c,
                    ["BlockMask", $"layout[{at}] = {value}"], HostOnly: true);
            }
            case 9:
            {
                int length = r.Next(0, s.Heads);
                return new($"{length} flags", TableOps.HeadSelect(new int[length], default(CausalMask), new SinkWindowMask(4, 16)), c,
                    ["HeadSelectMask", $"{length} entries", $"{s.Heads} heads"]);
            }
            case 10:
            {
                int heads = r.Next(2) == 0 ? 1 : s.Heads, radius = r.Next(0, 40), need = heads * (2 * radius + 1);
                int length = need - r.Next(1, need + 1);
                return new("bias table too short", TableOps.RelativeBias(new float[length], heads, radius), c,
                    ["RelativeBiasScore", $"{length} floats", $"{need} are needed"]);
            }
            case 11:
            {
                int heads = s.Heads + r.Next(1, 3), radius = r.Next(0, 40);
                return new($"bias table of {heads} heads", TableOps.RelativeBias(new float[heads * (2 * radius + 1)], heads, radius), c,
                    ["RelativeBiasScore", $"{heads} table heads", $"{s.Heads} heads"]);
            }
            case 12:
            {
                int need = s.Batch * s.Heads * positions, length = need - r.Next(1, need + 1);
                return new("temperatures too short", TableOps.QueryTemperature(new float[length], s.Heads, positions), c,
                    ["QueryTemperatureScore", $"{length} floats", $"{need} are needed"]);
            }
            default:
            {
                int heads = s.Heads == 1 || r.Next(2) == 0 ? s.Heads + r.Next(1, 3) : s.Heads - r.Next(1, s.Heads);
                return new($"temperatures of {heads} heads", TableOps.QueryTemperature(new float[s.Batch * heads * positions], heads, positions), c,
                    ["QueryTemperatureScore", $"{heads} heads", $"{s.Heads}"]);
            }
        }
    }

    private static (int Heads, int QBlocks, int KBlocks, int BlockQ, int BlockK) Blocks(Random r, AttentionShape s, int positions)
    {
        int blockQ = TableData.BlockSize(r), blockK = TableData.BlockSize(r);
        return (r.Next(2) == 0 ? 1 : s.Heads, (positions + blockQ - 1) / blockQ, (s.SeqK + blockK - 1) / blockK, blockQ, blockK);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Description} ({Op})";

    /// <summary>
    /// Runs the op on <paramref name="backend"/> with its tables on <paramref name="tablesOn"/>
    /// (null: host tables), outputs pre-filled with the sentinel, and checks the
    /// ArgumentException, its parameter name, its message and that nothing was written.
    /// </summary>
    public static void AssertRejected(TableOp op, AttentionCase c, TestDevice backend, Accelerator? tablesOn,
        string paramName, string[] messageParts, string context)
    {
        var (output, lse) = AttentionRun.Allocate(c.Shape);
        var query = (float[])c.Query.Clone();
        ArgumentException error;
        try
        {
            op.Run(backend, tablesOn, c.Shape, c.Query, c.Key, c.Value, output, lse, c.Options);
            throw new XunitException($"no exception. {context}");
        }
        catch (ArgumentException e) { error = e; }
        Assert.True(error.GetType() == typeof(ArgumentException), $"{error.GetType().Name}: {error.Message} {context}");
        Assert.True(error.ParamName == paramName, $"ParamName '{error.ParamName}', expected '{paramName}'. {error.Message} {context}");
        foreach (var part in messageParts)
            Assert.True(error.Message.Contains(part, StringComparison.Ordinal), $"message lacks '{part}': {error.Message} {context}");
        Assert.True(output.All(x => x == AttentionRun.Sentinel), $"output was written. {context}");
        Assert.True(lse.All(x => x == AttentionRun.Sentinel), $"log-sum-exp was written. {context}");
        Assert.True(c.Query.AsSpan().SequenceEqual(query), $"query changed. {context}");
    }
}

/// <summary>
/// Bad tables on the host kernel: each kind of <see cref="BadTable"/> with host tables throws
/// ArgumentException (ParamName "shape": the table does not fit the call's shape) naming the
/// operator and the numbers, before anything is written (output and log-sum-exp keep the
/// sentinel). A DeviceTable operator is rejected by the host kernel (ParamName "mask" or
/// "score"). Inner masks of BlockMask and HeadSelectMask are validated too. TreeMasks.Ancestors
/// rejects parents outside [-1, i). Nothing is launched, so the counts are those of the
/// backend's own validation property.
/// </summary>
[Collection(HostBackendCollection.Name)]
public sealed class TableVariantHostValidationTests(HostBackendFixture fixture)
{
    private static Arbitrary<AttentionCase> Cases { get; } = AttentionGen.Cases(CaseLimits.Host).ToArbitrary();

    [Property(MaxTest = 300)]
    public Property BadTableThrowsBeforeWritingAnything() =>
        Prop.ForAll(Cases, Gen.Choose(0, BadTable.Kinds - 1).ToArbitrary(), (c, kind) =>
        {
            var bad = BadTable.Make(c, kind);
            BadTable.AssertRejected(bad.Op, bad.Case, fixture.Backend, null, "shape", bad.MessageParts, $"{bad}: {bad.Case}");
        });

    /// <summary>Operators over DeviceTable views (default views: the check is on the type,
    /// before any element is read) on the host kernel.</summary>
    [Property(MaxTest = 50)]
    public Property DeviceTableOperatorIsRejectedOnTheHost() =>
        Prop.ForAll(Cases, c =>
        {
            var (output, lse) = AttentionRun.Allocate(c.Shape);
            var s = c.Shape;
            void Check(Action call, string paramName, string what)
            {
                var error = Assert.Throws<ArgumentException>(call);
                Assert.True(error.ParamName == paramName, $"{what}: ParamName '{error.ParamName}'. {error.Message}");
                Assert.Contains("DeviceTable", error.Message);
                Assert.Contains("HostTable", error.Message);
                Assert.True(output.All(x => x == AttentionRun.Sentinel) && lse.All(x => x == AttentionRun.Sentinel), $"{what}: written");
            }
            DeviceTable<int> ints = default;
            DeviceTable<float> floats = default;
            Check(() => HostAttention.Forward(s, c.Query, c.Key, c.Value, output, lse, default(NoScore),
                new DocumentIdMask<DeviceTable<int>>(ints, s.SeqK, DocumentIdOrder.NonDecreasing), c.Options), "mask", "ids");
            Check(() => fixture.Backend.Attention(s, c.Query, c.Key, c.Value, output, lse, default(NoScore),
                new And<CausalMask, BlockMask<NoMask, DeviceTable<int>>>(default, new(ints, default, 1, 1, 1, 1, 1)), c.Options), "mask", "block");
            Check(() => fixture.Backend.Attention(s, c.Query, c.Key, c.Value, output, lse,
                new RelativeBiasScore<DeviceTable<float>>(floats, 1, 0), default(CausalMask), c.Options), "score", "bias");
            Check(() => HostAttention.Forward(s, c.Query, c.Key, c.Value, output, lse,
                new QueryTemperatureScore<DeviceTable<float>>(floats, s.Heads, 1), default(NoMask), c.Options), "score", "temperature");
        });

    /// <summary>The inner masks of BlockMask and HeadSelectMask are validated: ids for
    /// another seqK inside either is rejected as at top level.</summary>
    [Fact]
    public void InnerMasksAreValidated()
    {
        var shape = new AttentionShape(1, 2, 2, 20, 20, 8, 8);
        var c = new AttentionCase(shape, QueryAlignment.BottomRight, 0, 7);
        var ids = new VariantTable<int>(new int[21]).Host; // for seqK 21
        var layout = new VariantTable<int>(new[] { 1, 1 }).Host;
        var flags = new VariantTable<int>(new[] { 1, 0 }).Host;
        var inner = new DocumentIdMask<HostTable<int>>(ids, 21, DocumentIdOrder.NonDecreasing);
        void Check<TMask>(TMask mask) where TMask : struct, IMaskPredicate
        {
            var (output, lse) = AttentionRun.Allocate(shape);
            var error = Assert.Throws<ArgumentException>(() => fixture.Backend.Attention(shape, c.Query, c.Key, c.Value,
                output, lse, default(NoScore), mask, c.Options));
            Assert.Contains("DocumentIdMask was built for seqK 21", error.Message);
            Assert.True(output.All(x => x == AttentionRun.Sentinel) && lse.All(x => x == AttentionRun.Sentinel), $"{typeof(TMask).Name}: written");
        }
        Check(new BlockMask<DocumentIdMask<HostTable<int>>, HostTable<int>>(layout, inner, 1, 1, 2, 20, 10));
        Check(new HeadSelectMask<CausalMask, DocumentIdMask<HostTable<int>>, HostTable<int>>(flags, default, inner));
        Check(new HeadSelectMask<DocumentIdMask<HostTable<int>>, CausalMask, HostTable<int>>(flags, inner, default));
    }

    /// <summary>TreeMasks.Ancestors rejects a parent &gt;= i (its own index or a later node:
    /// no cycles, ancestors precede) or &lt; -1, naming the node; valid parents pass.</summary>
    [Property(MaxTest = 200)]
    public Property AncestorsRejectsParentsOutsideMinusOneToI() =>
        Prop.ForAll(Gen.Choose(1, 80).ToArbitrary(), AttentionGen.Seed.ToArbitrary(), (nodes, seed) =>
        {
            var r = new Random(seed);
            var parents = TableData.Parents(r, nodes);
            TreeMasks.Ancestors(parents); // valid
            int i = r.Next(nodes);
            parents[i] = r.Next(3) switch
            {
                0 => i + r.Next(0, 5),               // itself or a later node
                1 => -2 - r.Next(0, 5),             // below -1
                _ => r.Next(2) == 0 ? int.MinValue : int.MaxValue,
            };
            var error = Assert.Throws<ArgumentException>(() => TreeMasks.Ancestors(parents));
            Assert.Equal("parents", error.ParamName);
            Assert.Contains($"parents[{i}] = {parents[i]}", error.Message);
        });
}

/// <summary>
/// Bad tables on the ILGPU kernel (ILGPU's CPU accelerator): the shape kinds of
/// <see cref="BadTable"/> with device tables (views uploaded to the backend's accelerator)
/// throw ArgumentException before anything is written or launched; operators over HostTables
/// are rejected by the ILGPU entry points (span and view), and device-table operators by the
/// host kernel, all with ParamName "mask" or "score". Nothing is launched, so 100 cases.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class TableVariantIlgpuValidationTests(IlgpuCpuFixture fixture)
{
    private static Arbitrary<AttentionCase> Cases { get; } = AttentionGen.Cases(TableVariantIlgpuCpuKernelTests.Limits).ToArbitrary();

    private static readonly int[] DeviceKinds =
        Enumerable.Range(0, BadTable.Kinds).Where(k => !BadTable.Make(Sample, k).HostOnly).ToArray();

    private static AttentionCase Sample => new(new AttentionShape(1, 1, 1, 4, 4, 4, 4), QueryAlignment.BottomRight, 0, 1);

    [Property(MaxTest = 100)]
    public Property BadDeviceTableThrowsBeforeWritingAnything() =>
        Prop.ForAll(Cases, Gen.Elements(DeviceKinds).ToArbitrary(), (c, kind) =>
        {
            var bad = BadTable.Make(c, kind);
            BadTable.AssertRejected(bad.Op, bad.Case, fixture.Backend, fixture.Backend.Device.Accelerator, "shape",
                bad.MessageParts, $"{bad}: {bad.Case}");
        });

    /// <summary>Every random table operator, valid for its shape, bound to host tables on the
    /// ILGPU backend, and bound to device views on the host kernel.</summary>
    [Property(MaxTest = 60)]
    public Property TablesOnTheWrongSideAreRejected() =>
        Prop.ForAll(Cases, Gen.Choose(0, TableOps.Kinds.Length - 1).ToArbitrary(), (c, kind) =>
        {
            var op = TableOps.Random(kind, c);
            string argument = kind >= 7 ? "score" : "mask"; // bias and temperature are score modifiers
            using var host = new TestDevice(ComputeDevice.Open(DeviceKind.Host));
            BadTable.AssertRejected(op, c, fixture.Backend, null, argument, ["HostTable", "DeviceTable"], $"host tables on ILGPU: {op}: {c}");
            BadTable.AssertRejected(op, c, host, fixture.Backend.Device.Accelerator, argument, ["HostTable", "DeviceTable"], $"device tables on the host: {op}: {c}");
        });

    /// <summary>The view entry point of the ILGPU backend rejects a HostTable operator too,
    /// and leaves the device output as it was.</summary>
    [Fact]
    public void ViewEntryPointRejectsHostTables()
    {
        var shape = new AttentionShape(1, 2, 1, 5, 7, 4, 4);
        var c = new AttentionCase(shape, QueryAlignment.BottomRight, 0, 3);
        var accelerator = fixture.Backend.Device.Accelerator!;
        using var q = accelerator.Allocate1D(c.Query);
        using var k = accelerator.Allocate1D(c.Key);
        using var v = accelerator.Allocate1D(c.Value);
        var (output, lse) = AttentionRun.Allocate(shape);
        using var o = accelerator.Allocate1D(output);
        using var l = accelerator.Allocate1D(lse);
        var ids = new VariantTable<int>(new int[7]).Host;
        var error = Assert.Throws<ArgumentException>(() => fixture.Backend.Attention(shape, q.View, k.View, v.View, o.View, l.View,
            default(NoScore), new DocumentIdMask<HostTable<int>>(ids, 7, DocumentIdOrder.NonDecreasing)));
        Assert.Equal("mask", error.ParamName);
        var bias = new VariantTable<float>(new float[3]).Host;
        error = Assert.Throws<ArgumentException>(() => fixture.Backend.Attention(shape, q.View, k.View, v.View, o.View, l.View,
            new RelativeBiasScore<HostTable<float>>(bias, 1, 1), default(NoMask)));
        Assert.Equal("score", error.ParamName);
        accelerator.Synchronize();
        Assert.True(o.GetAsArray1D().All(x => x == AttentionRun.Sentinel), "output was written");
        Assert.True(l.GetAsArray1D().All(x => x == AttentionRun.Sentinel), "log-sum-exp was written");
    }
}
