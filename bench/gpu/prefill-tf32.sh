#!/usr/bin/env bash
# One device call for the TF32 prefill (fp32 Q/K/V, AttentionPrecision.Tf32): ptxas registers
# and spills of its specializations, `check --precision exact,tf32` on CUDA (fp32 prefill cases
# against fp64 within each precision's bound), then our exact attention at both precisions
# beside PyTorch SDPA fp32 (efficient backend, allow_tf32 off; bench/gpu/torch_sdpa.py) on
# B=1, H=16, N 1024..16384, D 64/128, and the ratios (bench/gpu/tf32_table.py). CSVs under $OUT.
# Usage on the GPU machine (repo root, after the self-contained publish into .gpu/app.tgz):
# bash bench/gpu/prefill-tf32.sh
# (APP_TGZ=path: another archive; PTX=dir: PTX files already written by `devices --ptx-out`)
set -uo pipefail
HERE=$(dirname "$0")
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf "${APP_TGZ:-.gpu/app.tgz}" -C run
APP=run/app/managed
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/ptxas.txt"
PTX=${PTX:-}
if [ -z "$PTX" ]; then PTX=/tmp/ptx; $APP devices --ptx-out $PTX > /dev/null; fi
for f in prefill-mma-tf32-d{64,80,96,128}; do
  /usr/local/cuda/bin/ptxas -arch=sm_90 -v $PTX/$f.ptx -o /dev/null 2>&1 | grep -E "registers|spill|rror" | sed "s/^/$f: /" | tee -a "$OUT/ptxas.txt"
done
timeout 300 $APP check --device cuda --precision exact,tf32 > "$OUT/check.txt" 2>&1; echo "check rc=$?" >> "$OUT/check.txt"
cat "$OUT/check.txt"
timeout 250 $APP bench --device cuda --precision exact,tf32 --seq 1024,4096,16384 --dim 64,128 --heads 16 --out "$OUT/ours-fp32.csv" > "$OUT/ours-fp32.txt" 2>&1
PYTHONUNBUFFERED=1 timeout 150 python3 "$HERE/torch_sdpa.py" "$OUT/torch-fp32.csv" > "$OUT/torch-fp32.txt" 2>&1; tail -1 "$OUT/torch-fp32.txt"
python3 "$HERE/tf32_table.py" "$OUT/ours-fp32.csv" "$OUT/torch-fp32.csv" | tee "$OUT/table.txt"
