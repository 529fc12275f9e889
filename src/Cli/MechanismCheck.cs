using Managed.Kernels.Attention;
using Managed.Kernels.Devices;
using Managed.Kernels.LinearAttention;
using Managed.Kernels.Reference;
using Managed.Kernels.Registry;
using Managed.Kernels.Variants;

namespace Managed.Cli;

/// <summary>
/// The mechanisms built on the exact kernels, on one device against the fp64 reference:
/// Agent attention (L4: agents attend to the keys, queries to the agents), induced set
/// attention (L13: inducing points attend to the inputs, queries to the result) and Aaren's
/// prefix scan (E3: one query's attention over every prefix, against exact causal attention
/// of that query repeated); on ILGPU devices also InLine (L6) and Flow (L5) attention against
/// the host. The second stage's reference reads the first stage's fp64 result
/// rounded to float, as the kernels do. Pass rule as <see cref="CheckCommand"/>'s.
/// </summary>
internal static class MechanismCheck
{
    public static (int Checked, int Failed) Run(ComputeDevice device, TextWriter output)
    {
        int count = 0, failed = 0;
        void Report(string name, string label, float[] actual, double[] expected)
        {
            var (abs, rel, ok) = CheckCommand.Compare(actual, expected);
            count++;
            if (!ok) failed++;
            output.WriteLine($"{name,-34} {device.Kind,-10} {label,-52} {abs,10:E2} {rel,10:E2}  "
                + (ok ? "pass" : "FAIL"));
        }
        var rng = new Random(11);
        foreach (var (kvHeads, n) in new[] { (2, 100), (1, 257) })
        {
            var agent = new AgentAttentionShape(2, 4, kvHeads, n, n, 8, 16, 12);
            float[] q = BenchCommand.Fill(rng, agent.QueryLength), k = BenchCommand.Fill(rng, agent.KeyLength),
                v = BenchCommand.Fill(rng, agent.ValueLength), a = BenchCommand.Fill(rng, agent.AgentLength);
            var o = new float[agent.OutputLength];
            AgentAttention.Forward(device, agent, q, k, v, a, o);
            var (va, _) = ReferenceAttention.Forward(agent.AgentStage, a, k, v, default(NoScore),
                default(NoMask));
            var (expected, _) = ReferenceAttention.Forward(agent.QueryStage, q, a, ToFloat(va),
                default(NoScore), default(NoMask));
            Report("mechanism/agent", $"{agent.AgentStage} then {agent.QueryStage.SeqK} agents",
                o, expected);

            var isab = new InducedSetAttentionShape(2, 4, kvHeads, n, n, 6, 16);
            float[] iq = BenchCommand.Fill(rng, isab.QueryLength), ik = BenchCommand.Fill(rng, isab.KeyLength),
                iv = BenchCommand.Fill(rng, isab.KeyLength), ind = BenchCommand.Fill(rng, isab.InducingLength);
            var io = new float[isab.OutputLength];
            InducedSetAttention.Forward(device, isab, iq, ik, iv, ind, io);
            var (h, _) = ReferenceAttention.Forward(isab.InducingStage, ind, ik, iv,
                default(NoScore), default(NoMask));
            var hf = ToFloat(h);
            var (iexpected, _) = ReferenceAttention.Forward(isab.QueryStage, iq, hf, hf,
                default(NoScore), default(NoMask));
            Report("mechanism/isab", $"{isab.InducingStage} then queries", io, iexpected);

            var scan = new PrefixScanShape(2, 4, kvHeads, n, 16, 12);
            float[] sq = BenchCommand.Fill(rng, scan.QueryLength), sk = BenchCommand.Fill(rng, scan.KeyLength),
                sv = BenchCommand.Fill(rng, scan.ValueLength);
            var so = new float[scan.OutputLength];
            PrefixScanAttention.Forward(device, scan, sq, sk, sv, so);
            // Exact causal attention with every query row equal to the head's query.
            var exact = new AttentionShape(2, 4, kvHeads, n, n, 16, 12);
            var rows = new float[exact.QueryLength];
            for (int bh = 0; bh < 2 * 4; bh++)
                for (int t = 0; t < n; t++)
                    Array.Copy(sq, bh * 16, rows, ((long)bh * n + t) * 16, 16);
            var (sexpected, _) = ReferenceAttention.Forward(exact, rows, sk, sv, default(NoScore),
                default(CausalMask));
            Report("mechanism/prefix-scan", $"{scan}", so, sexpected);
        }
        // InLine (L6) and Flow (L5) run their own element-wise kernel on devices: against the
        // host, which the tests hold to an fp64 reference.
        if (!device.IsHost)
            foreach (int n in new[] { 100, 257 })
            {
                var shape = new LinearAttentionShape(2, 4, 4, n, 8, 12);
                float[] q = BenchCommand.Fill(rng, shape.QueryLength), k = BenchCommand.Fill(rng, shape.KeyLength),
                    v = BenchCommand.Fill(rng, shape.ValueLength);
                var onDevice = new float[shape.OutputLength];
                var onHost = new float[shape.OutputLength];
                InLineAttention.Forward(device, shape, q, k, v, onDevice);
                InLineAttention.Forward(ComputeDevice.Host, shape, q, k, v, onHost);
                Report("mechanism/inline", $"{shape} against the host", onDevice,
                    Array.ConvertAll(onHost, x => (double)x));
                FlowAttention.Forward(device, shape, q, k, v, onDevice);
                FlowAttention.Forward(ComputeDevice.Host, shape, q, k, v, onHost);
                Report("mechanism/flow", $"{shape} against the host", onDevice,
                    Array.ConvertAll(onHost, x => (double)x));
            }
        // The registered mechanisms (MechanismRegistry), each case against its fp64 reference.
        foreach (var mechanism in MechanismRegistry.All)
            foreach (var r in mechanism.Run(device, 17))
            {
                var (worst, ok) = r.Verdict();
                count++;
                if (!ok) failed++;
                output.WriteLine($"{"mechanism/" + mechanism.CatalogId + " " + mechanism.Name,-34} "
                    + $"{device.Kind,-10} {r.Label,-52} {worst,10:E2}  {(ok ? "pass" : "FAIL")}");
            }
        return (count, failed);
    }

    private static float[] ToFloat(double[] x) => Array.ConvertAll(x, d => (float)d);
}
