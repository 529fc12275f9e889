using Managed.Kernels.LinearAttention;

namespace Managed.Kernels.Reference;

/// <summary>
/// InLine attention with its local term (<see cref="InLineAttention"/>, <see cref="InLineLocal"/>)
/// in fp64: the materialized subtractive weights of
/// <see cref="ReferenceLinearMechanisms.InLine"/> plus, on the grid tokens, the depth-wise
/// convolution of V (per-sample weights (batch, kvHeads, valueDim, k, k), bias empty or
/// (batch, kvHeads, valueDim)) by direct loops; query head h adds its KV head's.
/// </summary>
public static class ReferenceInLineLocal
{
    /// <summary>Output (batch, heads, length, valueDim).</summary>
    public static double[] Forward(LinearAttentionShape s, InLineLocal local, double[] phiQ,
        double[] phiK, double[] v, float[] weights, float[] bias)
    {
        var o = ReferenceLinearMechanisms.InLine(s, phiQ, phiK, v);
        var conv = ReferenceVision.DepthwiseConv(s.Batch * s.Heads, s.KvHeads, local.Height,
            local.Width, s.ValueDim, local.Prefix, v, local.Kernel, weights, bias,
            perItem: true, group: s.Heads / s.KvHeads);
        for (int e = 0; e < o.Length; e++) o[e] += conv[e];
        return o;
    }
}
