#!/usr/bin/env bash
# One device call for the tensor-core prefill (fp16/bf16 Q/K/V): ptxas registers and spills of
# its specializations, `check --dtype half,bfloat16 --part 0/64` on CUDA (the 16-bit prefill
# cases against fp64, and registry entry 0 in both types; the whole variant table in 16 bits is
# bench/gpu/variants-half.sh's, the layouts and the rest bench/gpu/check.sh's), then our exact
# attention in half and bfloat16 beside PyTorch's flash backend (B=1, H=16, N 1024..16384,
# D 64/128; CSVs under $OUT).
# Usage on the GPU machine (repo root, after the self-contained publish into .gpu/app.tgz):
# bash bench/gpu/prefill-half.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
if [ -f .gpu/app.txz ]; then tar xJf .gpu/app.txz -C run; else tar xzf .gpu/app.tgz -C run; fi
APP=run/app/managed
$APP devices --ptx-out /tmp/ptx > /dev/null
for f in prefill-mma-{half,bf16}-d{64,80,96,128}; do
  /usr/local/cuda/bin/ptxas -arch=sm_90 -v /tmp/ptx/$f.ptx -o /dev/null 2>&1 | grep -E "registers|spill|rror" | sed "s/^/$f: /" | tee -a "$OUT/ptxas.txt"
done
timeout 300 $APP check --device cuda --dtype half,bfloat16 --part 0/64 > "$OUT/check.txt" 2>&1; echo "check rc=$?" >> "$OUT/check.txt"
cat "$OUT/check.txt"
timeout 200 $APP bench --device cuda --dtype half,bfloat16 --seq 1024,4096,16384 --dim 64,128 --heads 16 --out "$OUT/ours-half.csv"
PYTHONUNBUFFERED=1 timeout 150 python3 bench/gpu/torch_sdpa_half.py "$OUT/torch-half.csv" > "$OUT/torch-half.txt" 2>&1; cat "$OUT/torch-half.txt" | tail -24
