# The parts of the tensor-core prefill kernels that the fp16/bf16 generator
# (gen-mma-prefill-kernel.py) and the tf32 one (gen-mma-tf32-prefill-kernel.py) emit alike: the
# tile's logits, its online softmax and the epilogue's row sums and log-sum-exp. Their S
# accumulators share one layout (m16n8: keys 8n + 2t, +1 of rows g, g + 8), so only P's packing
# and P V differ. The C# steps both call (NextTile, CopyTile, Logit, Prob) live in
# src/Kernels/Attention/MmaPrefillSteps.cs.

KEYTILES = 8    # n-tiles of 8 keys in a 64-key tile


def emit_tile_softmax(w, tiles):
    """Logits of rows A (g) and B (g + 8) from the S accumulators s0..s7, the online softmax
    (row maxima over the quad, weights, row sums) and the rescale of o0..o{tiles-1}; leaves the
    weights in a{n}_{half}, b{n}_{half}."""
    w('''                // Logits of rows A (g) and B (g + 8) at keys k0 + 8n + 2t, +1: scaled,
                // modified, masked (-inf past seqK, or where a partial tile's mask forbids).''')
    names = [f'{row}{n}_{half}' for n in range(KEYTILES) for half in range(2) for row in 'ab']
    for i in range(0, len(names), 8):
        w('                float ' + ', '.join(names[i:i+8]) + ';')
    w('                int kt = k0 + 2 * t;')
    w('                if (interior)')
    w('                {')
    w('                    // Every pair allowed and in range: only the score modifier.')
    for n in range(KEYTILES):
        for half in range(2):
            for row, c in (('A', f'C{half}'), ('B', f'C{half+2}')):
                w(f'                    {row.lower()}{n}_{half} = score.Apply(s{n}.{c} * p.Scale, b, h, qp{row}, kt + {8*n + half});')
    w('                }')
    w('                else')
    w('                {')
    for n in range(KEYTILES):
        for half in range(2):
            for row, c in (('A', f'C{half}'), ('B', f'C{half+2}')):
                w(f'                    {row.lower()}{n}_{half} = Logit(s{n}.{c} * p.Scale, kind, score, mask, b, h, qp{row}, kt + {8*n + half}, seqK, ks{row}, ke{row});')
    w('                }')
    w('')
    w('                // Online softmax: row maxima over the quad holding each row.')
    for row in 'AB':
        r = row.lower()
        expr = f'{r}0_0'
        for n in range(KEYTILES):
            for half in range(2):
                if n == 0 and half == 0:
                    continue
                expr = f'XMath.Max({expr}, {r}{n}_{half})'
        w(f'                float top{row} = {expr};')
        w(f'                top{row} = XMath.Max(top{row}, Warp.ShuffleXor(top{row}, 1));')
        w(f'                top{row} = XMath.Max(top{row}, Warp.ShuffleXor(top{row}, 2));')
        w(f'                float new{row} = XMath.Max(m{row}, top{row});')
        w(f'                float alpha{row} = new{row} == float.NegativeInfinity ? 1f : XMath.Exp(m{row} - new{row});')
        w(f'                m{row} = new{row};')
        w(f'                float scaledMax{row} = (new{row} == float.NegativeInfinity ? 0f : new{row}) * Log2E;')
        for n in range(KEYTILES):
            for half in range(2):
                w(f'                {r}{n}_{half} = Prob<TCore>({r}{n}_{half}, scaledMax{row});')
        total = ' + '.join(f'{r}{n}_{half}' for n in range(KEYTILES) for half in range(2))
        w(f'                l{row} = l{row} * alpha{row} + ({total});')
    for u in range(tiles):
        w(f'                if (TTiles.Count > {u}) {{ o{u}.C0 *= alphaA; o{u}.C1 *= alphaA; o{u}.C2 *= alphaB; o{u}.C3 *= alphaB; }}')


def emit_row_sums(w):
    """The row sums across the quad and their reciprocals (0 for a row with no allowed key)."""
    w('''        lA += Warp.ShuffleXor(lA, 1);
        lA += Warp.ShuffleXor(lA, 2);
        lB += Warp.ShuffleXor(lB, 1);
        lB += Warp.ShuffleXor(lB, 2);
        float invA = lA == 0f ? 0f : 1f / lA, invB = lB == 0f ? 0f : 1f / lB;''')


def emit_log_sum_exp(w):
    """The log-sum-exp of rows A and B (-inf for a row with no allowed key), by lane t = 0."""
    w('''        if (t == 0 && p.HasLogSumExp != 0)
        {
            long lse = (long)bh * p.SeqQ + q0;
            if (validA) logSumExp[lse + rowA] = lA == 0f ? float.NegativeInfinity : mA + XMath.Log(lA);
            if (validB) logSumExp[lse + rowB] = lB == 0f ? float.NegativeInfinity : mB + XMath.Log(lB);
        }''')
