#!/usr/bin/env bash
# Speed of this build against a baseline build, in one device call: exact attention (B=1, H=16,
# N in {1024, 4096, 16384}, D in {64, 128}, causal and not) and the variant table, each build
# run in turn, three rounds (A B A B A B), so both see the same machine. Results under $OUT as
# CSVs (ours-r<k>.csv, base-r<k>.csv, and -variants) and a summary of median ratios.
# Setup here: the self-contained publish of this build in .gpu/app.tgz; the baseline's own
# assemblies (managed.dll, Managed.Kernels.dll, Managed.Tensors.dll; not managed.deps.json, which
# would make the self-contained host fail) in .gpu/base/ (they run on this build's runtime: same .NET and package versions).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
cp -r run/app run/base && cp .gpu/base/* run/base/
ROUNDS=${ROUNDS:-3}
for ((r = 0; r < ROUNDS; r++)); do
  for build in app base; do
    name=$([ $build = app ] && echo ours || echo base)
    timeout 150 run/$build/managed bench --device cuda --seq 1024,4096,16384 --dim 64,128 \
      --heads 16 --out "$OUT/$name-r$r.csv" > /dev/null 2>&1 || echo "$name exact round $r failed"
    timeout 150 run/$build/managed bench --variants --device cuda --seq 4096,16384 \
      --dim 64,128 --heads 16 --out "$OUT/$name-variants-r$r.csv" > /dev/null 2>&1 \
      || echo "$name variants round $r failed"
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY' | tee "$OUT/compare.txt"
import csv, sys, statistics, os
out, rounds = sys.argv[1], int(sys.argv[2])
def load(name, keycols, val):
    rows = {}
    for r in range(rounds):
        p = f"{out}/{name}-r{r}.csv"
        if not os.path.exists(p): continue
        for row in csv.DictReader(open(p)):
            rows.setdefault(tuple(row[c] for c in keycols), []).append(float(row[val]))
    return rows
for kind, keys, val in [("", ["seq", "dim", "causal"], "ms"),
                        ("variants-", ["variant", "seq", "dim"], "ms")]:
    ours, base = load(f"ours-{kind}".rstrip("-"), keys, val), load(f"base-{kind}".rstrip("-"), keys, val)
    print(f"{kind or 'exact-'}: key, base ms, ours ms (medians of {rounds}), base/ours")
    for key in ours:
        # Variant names differ between builds; match by position when the key is missing.
        b = base.get(key)
        if b is None: continue
        mo, mb = statistics.median(ours[key]), statistics.median(b)
        print(f"  {' '.join(key):40s} {mb:9.3f} {mo:9.3f} {mb / mo:6.3f}")
PY
