namespace Managed.Models;

/// <summary>
/// The output gate of gated attention for one layer (Bondarenko et al., 2023, "Quantizable
/// Transformers: Removing Outliers by Helping Attention Heads Do Nothing"; catalog S1):
/// each head's attention output is multiplied, per token, by σ(G_h(x)) before o_proj, where
/// x is the layer's attention input (the normed hidden state of that token) and
/// G_h(x) = w_h · x + b_h is a learned linear gate. The paper writes
/// Gated_attention(x) = σ(G(x)) ⊙ softmax(Q Kᵀ / √d_head) V with G applied per head to that
/// head's d_head-wide slice of x (its linear variant G_h: ℝ^d_head → ℝ, shared across
/// tokens); that is the special case of block-diagonal <see cref="Weight"/> here, whose rows
/// w_h span the whole hidden state (zero outside head h's slice gives the paper's form when
/// hidden = heads · head_dim). A gate ≡ 1 (zero weights and a large bias, e.g. +40, where
/// σ rounds to 1 in fp32) gives exact attention. The learned values come from training
/// with the gate; the checkpoint formats read here carry none, so they are supplied through
/// <see cref="ModelOptions.OutputGates"/>.
/// </summary>
public sealed class AttentionOutputGate
{
    /// <summary>A gate over <paramref name="weight"/> (heads × hidden, row-major: row h is
    /// w_h) and <paramref name="bias"/> (heads). The arrays are read when a model loads
    /// (copied to its device, or to the model's own host copy); the shapes are checked
    /// against the config then.</summary>
    /// <exception cref="ArgumentNullException">An array is null.</exception>
    public AttentionOutputGate(float[] weight, float[] bias)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(bias);
        (Weight, Bias) = (weight, bias);
    }

    /// <summary>G's weights (heads, hidden), row-major: row h is w_h.</summary>
    public float[] Weight { get; }

    /// <summary>G's bias (heads): b_h.</summary>
    public float[] Bias { get; }

    /// <summary>A gate ≡ 1 for a model of <paramref name="heads"/> heads over a hidden state
    /// of <paramref name="hidden"/>: zero weights, bias +40 (σ(40) is 1 in fp32).</summary>
    public static AttentionOutputGate Open(int heads, int hidden)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hidden);
        var bias = new float[heads];
        Array.Fill(bias, 40f);
        return new AttentionOutputGate(new float[(long)heads * hidden], bias);
    }

    /// <summary>Throws unless the shapes fit <paramref name="heads"/> heads over a hidden
    /// state of <paramref name="hidden"/>.</summary>
    internal void Check(int layer, int heads, int hidden)
    {
        if (Weight.Length != (long)heads * hidden)
            throw new ArgumentException($"OutputGates[{layer}].Weight has {Weight.Length} "
                + $"elements; expected heads × hidden = {heads} × {hidden} = "
                + $"{(long)heads * hidden}.", nameof(ModelOptions.OutputGates));
        if (Bias.Length != heads)
            throw new ArgumentException($"OutputGates[{layer}].Bias has {Bias.Length} "
                + $"elements; expected heads = {heads}.", nameof(ModelOptions.OutputGates));
    }
}
