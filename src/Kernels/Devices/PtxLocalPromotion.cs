using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using ILGPU.Backends.PTX;

namespace Managed.Kernels.Devices;

/// <summary>
/// Puts the one-value local variables of ILGPU's inline-PTX outputs into registers. ILGPU 1.5.3
/// hands every output of <c>CudaAsm.Emit</c>/<c>EmitRef</c> to the instruction through a
/// 4- or 8-byte <c>.local</c> variable (<c>mov.b64 %rd, __local_depotN</c>, then
/// <c>st.local</c>/<c>ld.local</c> through that address). Offline ptxas 11.8 turns those into
/// registers; the H200's driver JIT (driver 580) did not: the tensor-core decode kernel's
/// 700 such variables went through L1 and L2 (ncu: L2 86 % busy, 45 M sectors of local
/// traffic for 106 MB of cache read, 0.13 instructions issued per cycle). This rewrites each
/// variable whose address register is used only by loads and stores of its whole width into a
/// register of that width; any other variable (a bool in a 4-byte slot, an address passed on,
/// an offset) is left as it is.
/// </summary>
internal static partial class PtxLocalPromotion
{
    [GeneratedRegex(@"^\s*\.local \.align \d+ \.b8 (__local_depot\d+)\[(4|8)\];\s*$")]
    private static partial Regex Declaration();

    [GeneratedRegex(@"^\s*mov\.b64\s+(%rd\d+), (__local_depot\d+);\s*$")]
    private static partial Regex Address();

    [GeneratedRegex(@"^(\s*)st\.local\.[bfsu](\d+)\s+\[(%rd\d+)\], ([^;]+);\s*$")]
    private static partial Regex Store();

    [GeneratedRegex(@"^(\s*)ld\.local\.[bfsu](\d+)\s+([^,]+), \[(%rd\d+)\];\s*$")]
    private static partial Regex Load();

    [GeneratedRegex(@"%rd\d+\b")]
    private static partial Regex AddressRegister();

    /// <summary>The PTX with every promotable local variable in a register (unchanged when
    /// there is none).</summary>
    public static string Promote(string ptx)
    {
        if (!ptx.Contains("__local_depot", StringComparison.Ordinal)) return ptx;
        // Depot and register names are per function: each function (up to the "}" closing it
        // at the start of a line) is rewritten on its own.
        var functions = new List<string>();
        int start = 0;
        for (int end = ptx.IndexOf("\n}", StringComparison.Ordinal); end >= 0;
             end = ptx.IndexOf("\n}", start, StringComparison.Ordinal))
        {
            functions.Add(ptx[start..(end + 2)]);
            start = end + 2;
        }
        functions.Add(ptx[start..]);
        var rewritten = functions.Select(PromoteFunction).ToList();
        return rewritten.Zip(functions).All(p => ReferenceEquals(p.First, p.Second))
            ? ptx : string.Concat(rewritten);
    }

    /// <summary>One function's text (with what precedes it) rewritten.</summary>
    private static string PromoteFunction(string ptx)
    {
        if (!ptx.Contains("__local_depot", StringComparison.Ordinal)) return ptx;
        var lines = ptx.Split('\n');
        var size = new Dictionary<string, int>();       // depot -> bytes
        var depotOf = new Dictionary<string, string>(); // address register -> depot
        foreach (var line in lines)
        {
            var d = Declaration().Match(line);
            if (d.Success) size[d.Groups[1].Value] = int.Parse(d.Groups[2].Value);
            var a = Address().Match(line);
            if (a.Success && !depotOf.TryAdd(a.Groups[1].Value, a.Groups[2].Value))
                depotOf[a.Groups[1].Value] = ""; // defined twice: not ours to move
        }
        // An address register used by anything but its definition, a whole-value load or a
        // whole-value store keeps its variable in memory.
        foreach (var line in lines)
        {
            if (Address().IsMatch(line)) continue;
            var st = Store().Match(line);
            var ld = Load().Match(line);
            var (register, bits) = st.Success ? (st.Groups[3].Value, st.Groups[2].Value)
                : ld.Success ? (ld.Groups[4].Value, ld.Groups[2].Value) : ("", "");
            if (register.Length > 0)
            {
                // A load or store of part of the variable keeps it in memory.
                if (depotOf.TryGetValue(register, out var depot) && depot.Length > 0
                    && (!size.TryGetValue(depot, out int bytes) || int.Parse(bits) != 8 * bytes))
                    depotOf[register] = "";
                continue;
            }
            foreach (Match m in AddressRegister().Matches(line))
                if (depotOf.ContainsKey(m.Value)) depotOf[m.Value] = "";
        }
        var promoted = depotOf.Where(e => e.Value.Length > 0 && size.ContainsKey(e.Value))
            .ToDictionary(e => e.Key, e => e.Value);
        if (promoted.Count == 0) return ptx;
        var promotedDepots = promoted.Values.ToHashSet();

        var text = new StringBuilder(ptx.Length);
        foreach (var line in lines)
        {
            var d = Declaration().Match(line);
            if (d.Success && promotedDepots.Contains(d.Groups[1].Value))
            {
                string depot = d.Groups[1].Value;
                text.Append('\t').Append(".reg .b").Append(size[depot] * 8).Append(' ')
                    .Append(RegisterOf(depot)).Append(";\n");
                continue;
            }
            var a = Address().Match(line);
            if (a.Success && promoted.ContainsKey(a.Groups[1].Value)) continue;
            var st = Store().Match(line);
            if (st.Success && promoted.TryGetValue(st.Groups[3].Value, out var sd))
            {
                text.Append(st.Groups[1].Value).Append("mov.b").Append(size[sd] * 8).Append('\t')
                    .Append(RegisterOf(sd)).Append(", ").Append(Bits(st.Groups[4].Value))
                    .Append(";\n");
                continue;
            }
            var ld = Load().Match(line);
            if (ld.Success && promoted.TryGetValue(ld.Groups[4].Value, out var lt))
            {
                text.Append(ld.Groups[1].Value).Append("mov.b").Append(size[lt] * 8).Append('\t')
                    .Append(ld.Groups[3].Value).Append(", ").Append(RegisterOf(lt))
                    .Append(";\n");
                continue;
            }
            text.Append(line).Append('\n');
        }
        if (!ptx.EndsWith('\n')) text.Length--;
        return text.ToString();
    }

    /// <summary>Promotes the locals of a compiled CUDA kernel in place (its PTX is what the
    /// driver loads).</summary>
    public static void Promote(PTXCompiledKernel kernel)
    {
        string promoted = Promote(kernel.PTXAssembly);
        if (ReferenceEquals(promoted, kernel.PTXAssembly)) return;
        s_assembly.SetValue(kernel, promoted);
    }

    // PTXCompiledKernel.PTXAssembly has no setter and its constructor is internal (ILGPU
    // 1.5.3, pinned): the auto-property's backing field is set instead.
    private static readonly FieldInfo s_assembly = typeof(PTXCompiledKernel).GetField(
            "<PTXAssembly>k__BackingField", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new InvalidOperationException(
            "ILGPU's PTXCompiledKernel has no PTXAssembly backing field (expected ILGPU 1.5.3).");

    private static string RegisterOf(string depot) =>
        "%lp" + depot["__local_depot".Length..];

    /// <summary>A stored operand for a mov.bN: float literals (0f..., 0d...) as the integer
    /// of their bits.</summary>
    private static string Bits(string operand) =>
        operand.Length > 2 && operand[0] == '0' && operand[1] is 'f' or 'd'
            ? "0x" + operand[2..] : operand;
}
