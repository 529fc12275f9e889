using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using System.Text.RegularExpressions;
using Managed.Kernels;
using Managed.Tensors;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace Managed.Tests.Docs;

/// <summary>
/// Every ```csharp block of the repository's README.md is a complete program (its own usings,
/// its own data) that compiles and runs against today's library:
/// <list type="bullet">
/// <item>compiled in-process by Roslyn as top-level statements, with no implicit usings,
/// nullable on, warnings reported as errors, against the framework and the Managed.*
/// assemblies this test loads;</item>
/// <item>run once as written (<c>DeviceKind.Auto</c>: a GPU if present, else the host);</item>
/// <item>run again with every <see cref="DeviceChoice"/> replaced by <see cref="IlgpuCpuChoice"/>,
/// so its device code runs on ILGPU's CPU accelerator on a machine with no GPU (a snippet
/// without the token has no device code, and only that run is skipped).</item>
/// </list>
/// The snippets are read from README.md at test time, never copied here: edit the README,
/// and these tests follow.
/// </summary>
public class ReadmeSnippetTests
{
    /// <summary>The device choice a snippet writes; see <see cref="IlgpuCpuChoice"/>.</summary>
    public const string DeviceChoice = "DeviceKind.Auto";

    /// <summary>What <see cref="DeviceChoice"/> becomes for the ILGPU CPU run.</summary>
    public const string IlgpuCpuChoice = "DeviceKind.IlgpuCpu";

    private static readonly Lazy<IReadOnlyList<string>> Snippets = new(() =>
        ExtractCSharpBlocks(File.ReadAllText(Path.Combine(RepoRoot(), "README.md"))));

    public static TheoryData<int> SnippetIndexes()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Snippets.Value.Count; i++) data.Add(i);
        return data;
    }

    [Fact]
    public void ReadmeHasSnippetsAndOneUsesADevice()
    {
        Assert.True(Snippets.Value.Count >= 2,
            $"README.md has {Snippets.Value.Count} csharp blocks");
        Assert.Contains(Snippets.Value, s => s.Contains(DeviceChoice, StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(SnippetIndexes))]
    public void SnippetCompilesAndRunsAsWritten(int index) =>
        CompileAndRun(Snippets.Value[index], $"README csharp block {index + 1}");

    [Theory]
    [MemberData(nameof(SnippetIndexes))]
    public void SnippetRunsOnIlgpuCpu(int index)
    {
        var source = Snippets.Value[index];
        if (!source.Contains(DeviceChoice, StringComparison.Ordinal)) return;   // no device code
        CompileAndRun(source.Replace(DeviceChoice, IlgpuCpuChoice, StringComparison.Ordinal),
            $"README csharp block {index + 1} on ILGPU's CPU accelerator");
    }

    [Fact]
    public void ExtractionFindsOnlyCSharpFences()
    {
        const string md =
            "text\n```csharp\nA();\n```\n```bash\nls\n```\n  ```csharp\nB();\n  ```\n";
        Assert.Equal(["A();\n", "B();\n"], ExtractCSharpBlocks(md));
    }

    [Fact]
    public void ABrokenSnippetFailsWithTheCompilerMessage()
    {
        var e = Assert.ThrowsAny<Exception>(() => CompileAndRun("UndefinedName();", "broken"));
        Assert.Contains("CS0103", e.Message, StringComparison.Ordinal);
    }

    /// <summary>The bodies of the ```csharp fences (a fence may be indented; so is its
    /// closing fence).</summary>
    internal static IReadOnlyList<string> ExtractCSharpBlocks(string markdown)
    {
        var fence = new Regex(@"^[ \t]*```csharp[ \t]*\r?\n(?<body>.*?)^[ \t]*```[ \t]*$",
            RegexOptions.Multiline | RegexOptions.Singleline);
        return fence.Matches(markdown).Select(m => m.Groups["body"].Value.Replace("\r\n", "\n"))
            .ToArray();
    }

    /// <summary>The first folder above the test assembly that holds README.md and
    /// Managed.sln.</summary>
    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null;
             dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "README.md"))
                && File.Exists(Path.Combine(dir.FullName, "Managed.sln")))
                return dir.FullName;
        throw new InvalidOperationException(
            $"No README.md with Managed.sln above {AppContext.BaseDirectory}.");
    }

    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        // The shared framework's assemblies (implementation assemblies serve as references),
        // then the library's own and those its public API exposes (ILGPU, TensorSpan).
        var framework = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var paths = Directory.GetFiles(framework, "*.dll").Where(IsManagedAssembly)
            .Concat(new[]
            {
                typeof(Managed.Kernels.Attention.FlashAttention).Assembly,
                typeof(Managed.Tensors.NdTensor).Assembly,
                typeof(ILGPU.Context).Assembly, typeof(ILGPU.Algorithms.XMath).Assembly,
                typeof(System.Numerics.Tensors.TensorSpan<>).Assembly,
            }.Select(a => a.Location))
            .Distinct(StringComparer.Ordinal);
        return [.. paths.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))];
    });

    private static bool IsManagedAssembly(string path)
    {
        try
        {
            AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException)
        {
            return false;
        }
    }

    /// <summary>Compiles <paramref name="source"/> as a console program and runs its entry
    /// point; throws with the diagnostics, or with what the program threw.</summary>
    private static void CompileAndRun(string source, string name)
    {
        var tree = CSharpSyntaxTree.ParseText(source,
            new CSharpParseOptions(LanguageVersion.Latest), path: name);
        var options = new CSharpCompilationOptions(OutputKind.ConsoleApplication,
            nullableContextOptions: NullableContextOptions.Enable,
            optimizationLevel: OptimizationLevel.Release, allowUnsafe: false,
            generalDiagnosticOption: ReportDiagnostic.Error);
        var compilation = CSharpCompilation.Create("ReadmeSnippet" + Guid.NewGuid().ToString("N"),
            [tree], References.Value, options);
        using var image = new MemoryStream();
        var result = compilation.Emit(image);
        var problems = result.Diagnostics
            .Where(d => d.Severity >= DiagnosticSeverity.Warning).ToArray();
        if (!result.Success || problems.Length > 0)
            throw new Xunit.Sdk.XunitException(
                $"{name} does not compile:\n{string.Join('\n', problems.Select(d => d.ToString()))}"
                + $"\n--- source ---\n{source}");

        image.Position = 0;
        var context = new AssemblyLoadContext(name, isCollectible: false);
        var entry = context.LoadFromStream(image).EntryPoint
            ?? throw new InvalidOperationException($"{name} has no entry point.");
        object?[] args = entry.GetParameters().Length == 0 ? [] : [Array.Empty<string>()];
        try
        {
            var returned = entry.Invoke(null, args);
            if (returned is Task task)
            {
                task.GetAwaiter().GetResult();
                returned = (task as Task<int>)?.Result;
            }
            if (returned is int code && code != 0)
                throw new Xunit.Sdk.XunitException($"{name} returned exit code {code}.");
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw new Xunit.Sdk.XunitException($"{name} threw: {e.InnerException}");
        }
    }
}
