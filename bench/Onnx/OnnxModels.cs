
namespace Managed.Bench.Onnx;

/// <summary>The ONNX Runtime attention operators the suite compares against.</summary>
public enum OrtOperator
{
    /// <summary>com.microsoft MultiHeadAttention (contrib op): Q, K, V as (B, N, H*D).</summary>
    MultiHeadAttention,

    /// <summary>ONNX Attention, opset 23: Q, K, V as (B, H, N, D), attribute is_causal.</summary>
    Attention23,
}

/// <summary>
/// Builds one-node ONNX models in memory (ModelProto written field by field, see onnx.proto):
/// nothing binary is committed, the model bytes are generated at benchmark setup.
/// </summary>
public static class OnnxModels
{
    // onnx.proto: TensorProto.DataType.FLOAT = 1; AttributeProto.AttributeType FLOAT = 1, INT = 2.
    private const int ElemFloat = 1, AttrFloat = 1, AttrInt = 2;

    /// <summary>The model bytes of one attention node over (batch, heads, seq, headDim).</summary>
    public static byte[] Build(OrtOperator op, int batch, int heads, int seq, int headDim,
        bool causal)
    {
        float scale = 1f / MathF.Sqrt(headDim);
        long[] shape = op == OrtOperator.MultiHeadAttention
            ? [batch, seq, (long)heads * headDim]   // (batch, seq, heads * headDim)
            : [batch, heads, seq, headDim];         // (batch, heads, seq, headDim)
        var node = new ProtoWriter()
            .String(1, "q").String(1, "k").String(1, "v") // NodeProto.input
            .String(2, "out")                               // NodeProto.output
            .String(3, "attention");                        // NodeProto.name
        if (op == OrtOperator.MultiHeadAttention)
        {
            node.String(4, "MultiHeadAttention").String(7, "com.microsoft")
                .Message(5, IntAttribute("num_heads", heads))
                .Message(5, IntAttribute("unidirectional", causal ? 1 : 0))
                .Message(5, FloatAttribute("scale", scale));
        }
        else
        {
            node.String(4, "Attention")
                .Message(5, IntAttribute("is_causal", causal ? 1 : 0))
                .Message(5, FloatAttribute("scale", scale));
        }

        var graph = new ProtoWriter()
            .Message(1, node)                  // GraphProto.node
            .String(2, $"{op}_attention")      // GraphProto.name
            .Message(11, TensorValue("q", shape))
            .Message(11, TensorValue("k", shape))
            .Message(11, TensorValue("v", shape))
            .Message(12, TensorValue("out", shape));

        var model = new ProtoWriter()
            .Int(1, 10)                           // ModelProto.ir_version (IR 10: ONNX 1.16+)
            .String(2, "Managed.Bench")           // producer_name
            .Message(8, Opset("", op == OrtOperator.Attention23 ? 23 : 17));
        if (op == OrtOperator.MultiHeadAttention) model.Message(8, Opset("com.microsoft", 1));
        return model.Message(7, graph).ToArray(); // ModelProto.graph
    }

    internal static ProtoWriter Opset(string domain, long version) =>
        new ProtoWriter().String(1, domain).Int(2, version); // OperatorSetIdProto

    internal static ProtoWriter IntAttribute(string name, long value) =>
        new ProtoWriter().String(1, name).Int(3, value).Int(20, AttrInt); // AttributeProto.i

    internal static ProtoWriter FloatAttribute(string name, float value) =>
        new ProtoWriter().String(1, name).Float(2, value).Int(20, AttrFloat); // AttributeProto.f

    /// <summary>ValueInfoProto { name, type { tensor_type { elem_type, shape { dim* } } } }:
    /// no dims is a scalar. elemType: TensorProto.DataType (FLOAT 1, INT32 6, FLOAT16 10).
    /// </summary>
    internal static ProtoWriter TensorValue(string name, long[] dims, int elemType = ElemFloat)
    {
        var shape = new ProtoWriter();
        foreach (long d in dims) shape.Message(1, new ProtoWriter().Int(1, d)); // dim_value
        var tensor = new ProtoWriter().Int(1, elemType).Message(2, shape);
        return new ProtoWriter().String(1, name).Message(2, new ProtoWriter().Message(1, tensor));
    }
}
