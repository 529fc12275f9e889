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
/// A call with one thing wrong: the shape passed, the length of each tensor, the options, or an
/// output that overlaps the query. <see cref="ParamName"/> is the argument the ArgumentException
/// must name and <see cref="MessageParts"/> what its message must mention (dims, lengths).
/// </summary>
public sealed record BadCall(string Description, string ParamName, string[] MessageParts,
    AttentionShape Shape, long QueryLength, long KeyLength, long ValueLength, long OutputLength,
    long LogSumExpLength, AttentionOptions Options, bool OutputOverlapsQuery = false)
{
    /// <summary>Number of kinds <see cref="Make"/> knows.</summary>
    public const int Kinds = 10;

    /// <summary>The <paramref name="kind"/>-th way to break the valid case <paramref name="c"/>.</summary>
    public static BadCall Make(AttentionCase c, int kind, Random random)
    {
        var s = c.Shape;
        var ok = new BadCall("", "", [], s, s.QueryLength, s.KeyLength, s.ValueLength,
            s.OutputLength, s.LogSumExpLength, c.Options);
        int delta = random.Next(2) == 0 ? -1 : 1;
        switch (kind)
        {
            case 0:
                return ok with { Description = "query length", ParamName = "query",
                    QueryLength = s.QueryLength + delta, MessageParts = [$"{s.QueryLength + delta}", $"{s.QueryLength}"] };
            case 1:
                return ok with { Description = "key length", ParamName = "key",
                    KeyLength = s.KeyLength + delta, MessageParts = [$"{s.KeyLength + delta}", $"{s.KeyLength}"] };
            case 2:
                return ok with { Description = "value length", ParamName = "value",
                    ValueLength = s.ValueLength + delta, MessageParts = [$"{s.ValueLength + delta}", $"{s.ValueLength}"] };
            case 3:
                return ok with { Description = "output length", ParamName = "output",
                    OutputLength = s.OutputLength + delta, MessageParts = [$"{s.OutputLength + delta}", $"{s.OutputLength}"] };
            case 4:
                return ok with { Description = "log-sum-exp length", ParamName = "logSumExp",
                    LogSumExpLength = s.LogSumExpLength + 1, MessageParts = [$"{s.LogSumExpLength + 1}", $"{s.LogSumExpLength}"] };
            case 5:
            {
                // Key tensor laid out for another head dim: a shape mismatch between Q and K.
                long length = (long)s.Batch * s.KvHeads * s.SeqK * (s.HeadDim + 1);
                return ok with { Description = "key of another head dim", ParamName = "key",
                    KeyLength = length, MessageParts = [$"{length}", $"headDim {s.HeadDim}"] };
            }
            case 6:
            {
                string[] dims = ["Batch", "Heads", "KvHeads", "SeqQ", "SeqK", "HeadDim", "ValueDim"];
                int which = random.Next(dims.Length);
                int bad = random.Next(2) == 0 ? 0 : -random.Next(1, 1000);
                var shape = which switch
                {
                    0 => s with { Batch = bad }, 1 => s with { Heads = bad }, 2 => s with { KvHeads = bad },
                    3 => s with { SeqQ = bad }, 4 => s with { SeqK = bad }, 5 => s with { HeadDim = bad },
                    _ => s with { ValueDim = bad },
                };
                return ok with { Description = $"{dims[which]} = {bad}", ParamName = "shape", Shape = shape,
                    MessageParts = [dims[which], $"{bad}"] };
            }
            case 7:
            {
                // Heads not a multiple of KvHeads (buffers keep the valid shape's lengths).
                var shape = s.KvHeads > 1 ? s with { Heads = s.Heads + 1 } : s with { KvHeads = s.Heads + 1 };
                return ok with { Description = "heads % kvHeads != 0", ParamName = "shape", Shape = shape,
                    MessageParts = [$"({shape.Heads})", $"({shape.KvHeads})"] };
            }
            case 8:
            {
                float scale = new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity }[random.Next(3)];
                return ok with { Description = $"scale {scale}", ParamName = "options",
                    Options = c.Options with { Scale = scale }, MessageParts = ["Scale"] };
            }
            default:
                return ok with { Description = "output overlaps query", ParamName = "output",
                    OutputOverlapsQuery = true, MessageParts = ["overlap"] };
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Description} (expects {ParamName})";

    /// <summary>The delegate the bad call runs: (query, key, value, output, logSumExp).</summary>
    public delegate void Call(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        Span<float> o, Span<float> l);

    /// <summary>
    /// Builds the tensors of this call (outputs pre-filled with a sentinel), runs
    /// <paramref name="call"/> and checks the exception, its parameter name, its message and
    /// that no buffer changed.
    /// </summary>
    public void AssertRejected(AttentionCase c, IAttentionVariant variant, Call call)
    {
        var query = Filled(c.Query, QueryLength);
        var key = Filled(c.Key, KeyLength);
        var value = Filled(c.Value, ValueLength);
        var output = new float[OutputLength];
        var lse = new float[LogSumExpLength];
        output.AsSpan().Fill(AttentionRun.Sentinel);
        lse.AsSpan().Fill(AttentionRun.Sentinel);
        // Overlap: the output is the front of the query's own buffer.
        var shared = OutputOverlapsQuery
            ? Filled(c.Query, Math.Max(QueryLength, OutputLength)) : null;
        var queryBefore = (float[])(shared ?? query).Clone();
        var context = $"{this} on {variant.Name}: {c}";
        ArgumentException error;
        try
        {
            if (shared is null) call(query, key, value, output, lse);
            else call(shared.AsSpan(0, (int)QueryLength), key, value,
                shared.AsSpan(0, (int)OutputLength), lse);
            throw new XunitException($"no exception. {context}");
        }
        catch (ArgumentException e) { error = e; }
        Assert.True(ParamName == error.ParamName,
            $"ParamName '{error.ParamName}', expected '{ParamName}'. {error.Message} {context}");
        foreach (var part in MessageParts)
            Assert.True(error.Message.Contains(part, StringComparison.OrdinalIgnoreCase),
                $"message lacks '{part}': {error.Message} {context}");
        Assert.True(output.All(x => x == AttentionRun.Sentinel), $"output was written. {context}");
        Assert.True(lse.All(x => x == AttentionRun.Sentinel), $"log-sum-exp was written. {context}");
        Assert.True((shared ?? query).AsSpan().SequenceEqual(queryBefore), $"query changed. {context}");
    }

    /// <summary><paramref name="length"/> floats: <paramref name="data"/> repeated.</summary>
    private static float[] Filled(float[] data, long length)
    {
        var result = new float[length];
        for (long i = 0; i < length; i++) result[i] = data[i % data.Length];
        return result;
    }
}
