#!/usr/bin/env bash
# Session 3, correctness call: `check --device cuda --large` in 4 parallel parts (the fp64
# reference on the host is the slow side), then exact attention vs SDPA when EXACT=1.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
APP=run/app/managed
for k in 0 1 2 3; do
  (timeout ${CHECK_LIMIT:-280} $APP check --device cuda --large --part $k/4 > "$OUT/check-cuda-$k.txt" 2>&1; echo "cuda part $k rc=$?" >> "$OUT/check-cuda-$k.txt") &
done
wait
for k in 0 1 2 3; do tail -2 "$OUT/check-cuda-$k.txt"; grep -E "FAIL|xception" "$OUT/check-cuda-$k.txt" | head -5; done
if [ "${EXACT:-0}" = 1 ]; then
  timeout 120 $APP bench --device cuda --seq 1024,4096,16384 --dim 64,128 --heads 16 --out "$OUT/exact-ours.csv" | tail -13
  PYTHONUNBUFFERED=1 timeout 100 python3 bench/gpu/torch_sdpa.py "$OUT/exact-torch-sdpa.csv" > "$OUT/torch.txt" 2>&1; tail -14 "$OUT/torch.txt"
fi
