#!/usr/bin/env bash
# Session 3, speed call: the OpenCL (PoCL) check split over 4 low-priority processes in the
# background while the GPU runs the variant table (ours, then FlexAttention) and NA2D; ptxas.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
APP=run/app/managed
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/device.txt"
for k in 0 1 2 3; do
  (nice -n 19 timeout ${CL_LIMIT:-540} $APP check --device opencl --part $k/4 > "$OUT/check-opencl-$k.txt" 2>&1; echo "opencl part $k rc=$?" >> "$OUT/check-opencl-$k.txt") &
done
timeout 130 $APP bench --variants --device cuda --seq 4096,16384 --dim 64,128 --heads 16 --out "$OUT/ours-variants.csv" | tail -25
PYTHONUNBUFFERED=1 timeout 250 python3 bench/gpu/torch_flex.py "$OUT/flex.csv" 230 > "$OUT/flex.txt" 2>&1; grep -E "flex|rror|deadline" "$OUT/flex.txt" | tail -26
timeout 40 $APP bench --variants --device cuda --seq 3136 --dim 64 --heads 8 --out "$OUT/na2d-ours.csv" | grep -E "variant|na2d|causal " 
PYTHONUNBUFFERED=1 timeout 90 python3 bench/gpu/torch_flex_na2d.py "$OUT/na2d-flex.csv" 2>&1 | tail -2
$APP devices /tmp/ptx > /dev/null 2>&1
for f in causal-d64 softcap-30-causal-d64 full-d128 softcap-30-causal-d128; do
  /usr/local/cuda/bin/ptxas -arch=sm_90 -v /tmp/ptx/$f.ptx -o /dev/null 2>&1 | grep -E "registers|spill" | sed "s/^/$f: /" | tee -a "$OUT/device.txt"
done
wait
for k in 0 1 2 3; do tail -2 "$OUT/check-opencl-$k.txt"; grep -E "FAIL|xception" "$OUT/check-opencl-$k.txt" | head -3; done
