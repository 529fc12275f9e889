#!/usr/bin/env bash
# One device call: our GPU benchmark and PyTorch's side by side, then correctness on CUDA and
# OpenCL. Usage on the GPU machine (repo root): bash bench/gpu/run.sh ; results under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
APP=run/app/managed
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$OUT/device.txt"
$APP devices /tmp/ptx | tee -a "$OUT/device.txt"
for f in full-d64 full-d128 full-d256 causal-d64; do
  /usr/local/cuda/bin/ptxas -arch=sm_90 -v /tmp/ptx/$f.ptx -o /dev/null 2>&1 | grep -E "registers|spill" \
    | sed "s/^/$f: /" | tee -a "$OUT/device.txt"
done
timeout 200 $APP bench --device cuda --seq 1024,4096,16384 --dim 64,128 --heads 16 --out "$OUT/ours.csv"
PYTHONUNBUFFERED=1 timeout 120 python3 bench/gpu/torch_sdpa.py "$OUT/torch.csv" 2>&1 | tee "$OUT/torch.txt"
timeout 200 $APP check --device cuda --large > "$OUT/check-cuda.txt" 2>&1; tail -2 "$OUT/check-cuda.txt"
grep -E "FAIL|xception" "$OUT/check-cuda.txt" | head
timeout 150 $APP check --device opencl > "$OUT/check-opencl.txt" 2>&1; tail -2 "$OUT/check-opencl.txt"
grep -E "FAIL|xception" "$OUT/check-opencl.txt" | head
