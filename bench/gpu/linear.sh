#!/usr/bin/env bash
# One device call for linear attention: `managed check` rows of linear attention on CUDA (part
# 0 of a 400-way split: one registry variant, then layouts, decode, policies and linear), then
# `managed bench --linear` (B=1, H=16, causal, normalized, elu+1 features, D = 64 and 128, 1k to
# 64k tokens, beside our exact causal kernel; the time-per-token plot to $OUT/linear-h200.png)
# and the PyTorch chunked peer in the same call.
# Usage on the GPU machine (repo root, after the self-contained publish into .gpu/app.tgz):
# bash bench/gpu/linear.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
[ -x run/app/managed ] || tar xzf .gpu/app.tgz -C run
APP=run/app/managed
timeout 200 $APP check --device cuda --part 0/400 2>&1 | grep -E "^linear|^mechanism|checked|FAIL|error" \
  | tee "$OUT/linear-check.txt"
SEQS=${SEQS:-1024,4096,16384,65536}
timeout 240 $APP bench --linear --device cuda --batch 1 --heads 16 --dim 64,128 --seq $SEQS \
  --out "$OUT/linear.csv" --plot "$OUT/linear-h200.png" 2>&1 | tee "$OUT/linear.txt"
python3 bench/gpu/torch_linear.py "$OUT/torch-linear.csv" 4096,16384,65536 64,128 2>&1 \
  | tee "$OUT/torch-linear.txt"
mkdir -p ptx && $APP devices --ptx-out ptx > /dev/null 2>&1
for f in ptx/linear-*.ptx; do
  echo "$f: $(/usr/local/cuda/bin/ptxas -arch=sm_90 -v "$f" -o /dev/null 2>&1 \
    | grep -Eo 'Used [0-9]+ registers|[0-9]+ bytes spill stores|[0-9]+ bytes smem' | tr '\n' ' ')"
done | tee "$OUT/ptxas-linear.txt"
# The mechanism rows on CUDA (every registry mechanism against fp64) come with the check above.
