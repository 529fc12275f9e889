using System.Runtime.CompilerServices;
using Managed.Kernels.Attention;

namespace Managed.Kernels.Variants;

/// <summary>
/// Medusa's tree mask for verifying speculative candidates in one pass (catalog F12): keys are
/// a committed prefix of P tokens followed by the T nodes of a candidate tree; a node attends
/// to the whole prefix and to its ancestors and itself. Queries at positions before P (prefix
/// rows, if any) are causal. The tree is given as parents (parent[i] &lt; i, -1 for a root);
/// the table holds each node's ancestor set as a bit row of ceil(T / 32) ints
/// (<see cref="TreeMasks.Ancestors"/>). A single chain is the causal mask. A default instance
/// has no tree (0 nodes): entry points reject it.
/// </summary>
public readonly struct TreeMask<TAncestors> : IMaskPredicate, IShapeDependent, IValidated
    where TAncestors : struct, ITable<int>
{
    private readonly TAncestors _ancestors;
    private readonly int _prefix, _nodes, _words;

    /// <summary>A tree of <paramref name="nodes"/> nodes after <paramref name="prefix"/>
    /// committed tokens, with ancestor bit rows <paramref name="ancestors"/>.</summary>
    public TreeMask(TAncestors ancestors, int prefix, int nodes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(prefix);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(nodes);
        _ancestors = ancestors;
        _prefix = prefix;
        _nodes = nodes;
        _words = (nodes + 31) / 32;
    }

    /// <summary>0</summary>
    public int KeyStart(int batch, int head, int q0, int q1) => 0;

    /// <summary>q1: keys after the last query are never allowed.</summary>
    public int KeyEnd(int batch, int head, int q0, int q1) => q1;

    /// <summary>Prefix keys and causal prefix rows; for a node, its ancestors and itself.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int head, int q, int k)
    {
        if (k > q || k < 0 || q >= _prefix + _nodes) return false;
        if (k < _prefix) return true;
        int node = q - _prefix, ancestor = k - _prefix;
        return ((_ancestors[node * _words + (ancestor >> 5)] >> (ancestor & 31)) & 1) != 0;
    }

    /// <summary>Empty after the diagonal (ancestors precede their nodes); Full for node rows
    /// against prefix keys; else Partial.</summary>
    public TileKind Classify(int batch, int head, int q0, int q1, int k0, int k1)
    {
        if (k0 > q1 - 1 || q1 <= 0 || q0 >= _prefix + _nodes) return TileKind.Empty;
        if (k1 <= _prefix && q0 >= _prefix && q1 <= _prefix + _nodes) return TileKind.Full;
        if (k1 - 1 <= q0 && q1 <= _prefix && q0 >= 0) return TileKind.Full;
        return TileKind.Partial;
    }

    /// <summary>The tree is missing (default: 0 nodes).</summary>
    public string? ParameterError() => _nodes >= 1 && _prefix >= 0 ? null
        : VariantChecks.Missing("TreeMask", "nodes", _nodes,
            "a tree of >= 1 nodes after a prefix >= 0",
            isDefault: _nodes == 0 && _prefix == 0);

    /// <summary>The call must have seqK = prefix + nodes and a table of nodes x words ints.</summary>
    public void Validate(AttentionShape shape)
    {
        if (shape.SeqK != _prefix + _nodes)
            throw new ArgumentException(
                $"TreeMask covers prefix {_prefix} + {_nodes} nodes = {_prefix + _nodes} keys; the call has seqK {shape.SeqK}.", nameof(shape));
        if (_ancestors.Length < _nodes * _words)
            throw new ArgumentException(
                $"TreeMask ancestors hold {_ancestors.Length} ints; {_nodes} nodes x {_words} words are needed.", nameof(shape));
    }
}

/// <summary>Host-side helpers for tree masks.</summary>
public static class TreeMasks
{
    /// <summary>
    /// Ancestor bit rows of a tree: row i (ceil(T / 32) ints) has bit j set when node j is node
    /// i or one of its ancestors. <paramref name="parents"/>[i] is i's parent (&lt; i), or -1.
    /// </summary>
    /// <exception cref="ArgumentException">A parent is not in [-1, i).</exception>
    public static int[] Ancestors(ReadOnlySpan<int> parents)
    {
        int n = parents.Length, words = (n + 31) / 32;
        var rows = new int[n * words];
        for (int i = 0; i < n; i++)
        {
            int parent = parents[i];
            if (parent < -1 || parent >= i)
                throw new ArgumentException($"parents[{i}] = {parent}; a parent must be -1 or in [0, {i}).", nameof(parents));
            if (parent >= 0) Array.Copy(rows, parent * words, rows, i * words, words);
            rows[i * words + (i >> 5)] |= 1 << (i & 31);
        }
        return rows;
    }
}
