#!/usr/bin/env bash
# One device call: correctness on CUDA and OpenCL, then our GPU benchmark and PyTorch's, side by side.
# Usage on the GPU machine (repo root): bash bench/gpu/run.sh [what] ; results under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
APP=run/app/managed
what=${1:-all}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$OUT/device.txt"
if [[ $what == all || $what == check ]]; then
  $APP devices /tmp/ptx | tee -a "$OUT/device.txt"
  for f in full-d64 full-d128 causal-d64; do
    /usr/local/cuda/bin/ptxas -arch=sm_90 -v /tmp/ptx/$f.ptx -o /dev/null 2>&1 | grep -E "registers|spill" | sed "s/^/$f: /" | tee -a "$OUT/device.txt"
  done
  timeout 300 $APP check --device cuda --large 2>&1 | tee "$OUT/check-cuda.txt" | tail -4
  timeout 240 $APP check --device opencl 2>&1 | tee "$OUT/check-opencl.txt" | tail -4
fi
if [[ $what == all || $what == bench ]]; then
  $APP bench --device cuda --seq 1024,4096,16384 --dim 64,128 --heads 16 --out "$OUT/ours.csv"
  PYTHONUNBUFFERED=1 python3 bench/gpu/torch_sdpa.py "$OUT/torch.csv"
fi
