#!/usr/bin/env bash
# Session 3, correctness call: `check --device cuda --large`, then exact attention vs SDPA.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
APP=run/app/managed
timeout 300 $APP check --device cuda --large > "$OUT/check-cuda.txt" 2>&1; echo "cuda rc=$?"; tail -1 "$OUT/check-cuda.txt"
grep -E "FAIL|xception" "$OUT/check-cuda.txt" | head -5
timeout 120 $APP bench --device cuda --seq 1024,4096,16384 --dim 64,128 --heads 16 --out "$OUT/exact-ours.csv" | tail -13
PYTHONUNBUFFERED=1 timeout 100 python3 bench/gpu/torch_sdpa.py "$OUT/exact-torch-sdpa.csv" > "$OUT/torch.txt" 2>&1; tail -14 "$OUT/torch.txt"
