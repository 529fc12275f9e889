namespace Managed.Bench.Onnx;

/// <summary>
/// A one-node model of com.microsoft GroupQueryAttention for decode: the new tokens' query
/// (B, S, H*D), key and value (B, S, KvH*D) (BSNH), the cache as past_key / past_value
/// (B, KvH, P, D) (BNSH), seqlens_k (B) int32 = total length - 1, total_sequence_length int32
/// scalar; outputs (B, S, H*D) and present_key / present_value (B, KvH, max(P, total), D).
/// Causal among the S new rows, which sit at the last S positions of the total.
/// </summary>
public static class GqaDecodeModel
{
    // onnx.proto TensorProto.DataType.
    private const int ElemFloat = 1, ElemInt32 = 6, ElemFloat16 = 10;

    /// <summary>Input names in the operator's order (inputs 7.. are left out).</summary>
    public static readonly string[] Inputs =
        ["query", "key", "value", "past_key", "past_value", "seqlens_k", "total_sequence_length"];

    /// <summary>Output names in the operator's order.</summary>
    public static readonly string[] Outputs = ["output", "present_key", "present_value"];

    /// <summary>The model bytes. <paramref name="past"/> rows of past and
    /// <paramref name="present"/> rows of present cache; every size is fixed (one session per
    /// shape). The operator's shape inference gives the present the past's length (it assumes
    /// one shared buffer), so a longer present (past and present apart) is merged leniently
    /// with a warning; a symbolic length instead fails the run (the inferred one wins).
    /// </summary>
    public static byte[] Build(int batch, int heads, int kvHeads, int rows, int past,
        int present, int headDim, bool half)
    {
        int elem = half ? ElemFloat16 : ElemFloat;
        var node = new ProtoWriter();
        foreach (string input in Inputs) node.String(1, input);   // NodeProto.input
        foreach (string output in Outputs) node.String(2, output); // NodeProto.output
        node.String(3, "gqa").String(4, "GroupQueryAttention").String(7, "com.microsoft")
            .Message(5, OnnxModels.IntAttribute("num_heads", heads))
            .Message(5, OnnxModels.IntAttribute("kv_num_heads", kvHeads))
            .Message(5, OnnxModels.FloatAttribute("scale", 1f / MathF.Sqrt(headDim)));

        long[] q = [batch, rows, (long)heads * headDim];
        long[] kv = [batch, rows, (long)kvHeads * headDim];
        long[] presentShape = [batch, kvHeads, present, headDim];
        var graph = new ProtoWriter()
            .Message(1, node)
            .String(2, "gqa_decode")
            .Message(11, OnnxModels.TensorValue("query", q, elem))
            .Message(11, OnnxModels.TensorValue("key", kv, elem))
            .Message(11, OnnxModels.TensorValue("value", kv, elem))
            .Message(11, OnnxModels.TensorValue("past_key", [batch, kvHeads, past, headDim], elem))
            .Message(11, OnnxModels.TensorValue("past_value", [batch, kvHeads, past, headDim],
                elem))
            .Message(11, OnnxModels.TensorValue("seqlens_k", [batch], ElemInt32))
            .Message(11, OnnxModels.TensorValue("total_sequence_length", [], ElemInt32))
            .Message(12, OnnxModels.TensorValue("output", q, elem))
            .Message(12, OnnxModels.TensorValue("present_key", presentShape, elem))
            .Message(12, OnnxModels.TensorValue("present_value", presentShape, elem));
        return new ProtoWriter()
            .Int(1, 10)                                  // ModelProto.ir_version
            .String(2, "Managed.Bench")                  // producer_name
            .Message(8, OnnxModels.Opset("", 17))
            .Message(8, OnnxModels.Opset("com.microsoft", 1))
            .Message(7, graph)
            .ToArray();
    }
}
