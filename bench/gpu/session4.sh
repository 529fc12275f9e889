#!/usr/bin/env bash
# Session 4. PART=cuda: the variant table on CUDA (speed-ups over dense causal now timed in
# alternation with it), then `check --device cuda --large` in 4 parallel parts (the fp64
# reference on the host is the slow side). PART=opencl: `check --device opencl` (PoCL), 4 parts.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
APP=run/app/managed
PART=${PART:-cuda}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/device.txt"
if [ "$PART" = cuda ]; then
  timeout 150 $APP bench --variants --device cuda --seq 16384 --dim 64,128 --heads 16 --out "$OUT/ours-variants.csv" | tail -14
fi
for k in 0 1 2 3; do
  if [ "$PART" = cuda ]; then args="--device cuda --large"; else args="--device opencl"; fi
  (timeout ${CHECK_LIMIT:-400} $APP check $args --part $k/4 > "$OUT/check-$PART-$k.txt" 2>&1; echo "$PART part $k rc=$?" >> "$OUT/check-$PART-$k.txt") &
done
wait
for k in 0 1 2 3; do tail -n 2 "$OUT/check-$PART-$k.txt"; grep -E "FAIL|xception" "$OUT/check-$PART-$k.txt" | head -5; done
true
