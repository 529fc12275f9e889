#!/usr/bin/env bash
# One device call for correctness: `check` on CUDA with the large shapes, then on OpenCL.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
APP=run/app/managed
timeout 280 $APP check --device cuda --large > "$OUT/check-cuda.txt" 2>&1; echo "cuda rc=$?"; tail -1 "$OUT/check-cuda.txt"
grep -E "FAIL|xception" "$OUT/check-cuda.txt" | head -5
timeout 290 $APP check --device opencl > "$OUT/check-opencl.txt" 2>&1; echo "opencl rc=$?"; tail -1 "$OUT/check-opencl.txt"
grep -E "FAIL|xception" "$OUT/check-opencl.txt" | head -5
