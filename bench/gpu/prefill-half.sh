#!/usr/bin/env bash
# One device call for the tensor-core prefill (fp16/bf16 Q/K/V): ptxas registers and spills of
# its specializations (groups of 4 warps, and of 8: "-w8"), `check --dtype half,bfloat16
# --part 0/64` on CUDA (the 16-bit prefill cases against fp64 at 64 and 128 query rows per
# group, and registry entry 0 in both types; the whole variant table in 16 bits is
# bench/gpu/variants-half.sh's, the layouts and the rest bench/gpu/check.sh's), then our exact
# attention in half and bfloat16 beside PyTorch's flash backend (B=1, H=16, N 1024..16384;
# CSVs under $OUT), once per ROWS value (--tc-rows; "auto" = the default) and head dims DIMS
# (default 64,128).
# Usage on the GPU machine (repo root, after the self-contained publish into .gpu/app.txz):
# ROWS="auto 128" DIMS=64,128,256 bash bench/gpu/prefill-half.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
ROWS=${ROWS:-auto}
DIMS=${DIMS:-64,128}
if [ -f .gpu/app.txz ]; then tar xJf .gpu/app.txz -C run; else tar xzf .gpu/app.tgz -C run; fi
APP=run/app/managed
$APP devices --ptx-out /tmp/ptx > /dev/null
for f in prefill-mma-{half,bf16}-d{64,80,96,128,256} prefill-mma-half-d{64,128,256}-w8; do
  /usr/local/cuda/bin/ptxas -arch=sm_90 -v /tmp/ptx/$f.ptx -o /dev/null 2>&1 | grep -E "registers|spill|rror" | sed "s/^/$f: /" | tee -a "$OUT/ptxas.txt"
done
timeout 300 $APP check --device cuda --dtype half,bfloat16 --part 0/64 > "$OUT/check.txt" 2>&1; echo "check rc=$?" >> "$OUT/check.txt"
grep -E "FAIL|checked|rc=" "$OUT/check.txt"
for rows in $ROWS; do
  flag=""; [ "$rows" = auto ] || flag="--tc-rows $rows"
  timeout 200 $APP bench --device cuda --dtype half,bfloat16 --seq 1024,4096,16384 --dim $DIMS --heads 16 $flag --out "$OUT/ours-half-$rows.csv" > "$OUT/ours-half-$rows.txt" 2>&1
  echo "ours rows=$rows rc=$?"
done
PYTHONUNBUFFERED=1 timeout 150 python3 bench/gpu/torch_sdpa_half.py "$OUT/torch-half.csv" "$DIMS" > "$OUT/torch-half.txt" 2>&1; tail -3 "$OUT/torch-half.txt"
python3 - "$OUT" $ROWS <<'PY'
import csv, sys, os
out, rows = sys.argv[1], sys.argv[2:]
def load(p):
    return {(r["storage"], r["dim"], r["seq"], r["causal"]): float(r["tflops"]) for r in csv.DictReader(open(p))}
torch = load(os.path.join(out, "torch-half.csv"))
ours = {r: load(os.path.join(out, f"ours-half-{r}.csv")) for r in rows if os.path.exists(os.path.join(out, f"ours-half-{r}.csv"))}
print("storage  D      N causal  flash " + " ".join(f"{'rows ' + r:>10} {'ratio':>6}" for r in ours))
for key in sorted(torch, key=lambda k: (k[0], int(k[1]), int(k[2]), k[3])):
    line = f"{key[0]:8} {key[1]:>3} {key[2]:>6} {key[3]:>6} {torch[key]:6.1f} "
    for r, t in ours.items():
        v = t.get(key)
        line += f" {v:10.1f} {v / torch[key]:6.2f}" if v else f" {'-':>10} {'-':>6}"
    print(line)
PY
