#!/usr/bin/env bash
# One device call for the speed tables: exact attention vs PyTorch SDPA (efficient, fp32), then
# the FlexAttention-style variants vs torch.compile'd FlexAttention (fp32; each variant's
# speed-up over dense causal is timed in alternation with it), then 2-D neighborhood attention
# (56 x 56) vs FlexAttention. ptxas register/spill counts go to device.txt. Results under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
APP=run/app/managed
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/device.txt"
$APP devices --ptx-out /tmp/ptx > /dev/null
for f in full-d64 full-d128 softcap-30-causal-d64 softcap-30-causal-d128; do
  /usr/local/cuda/bin/ptxas -arch=sm_90 -v /tmp/ptx/$f.ptx -o /dev/null 2>&1 | grep -E "registers|spill" | sed "s/^/$f: /" | tee -a "$OUT/device.txt"
done
timeout 150 $APP bench --device cuda --seq 1024,4096,16384 --dim 64,128 --heads 16 --out "$OUT/ours.csv"
PYTHONUNBUFFERED=1 timeout 100 python3 bench/gpu/torch_sdpa.py "$OUT/torch.csv" > "$OUT/torch.txt" 2>&1; tail -14 "$OUT/torch.txt"
timeout 120 $APP bench --variants --device cuda --seq 4096,16384 --dim 64,128 --heads 16 --out "$OUT/ours-variants.csv"
PYTHONUNBUFFERED=1 timeout 200 python3 bench/gpu/torch_flex.py "$OUT/flex.csv" 180 > "$OUT/flex.txt" 2>&1; grep -E "flex|rror|deadline" "$OUT/flex.txt" | tail -26
timeout 60 $APP bench --variants --device cuda --seq 3136 --dim 64 --heads 8 --out "$OUT/na2d-ours.csv"
PYTHONUNBUFFERED=1 timeout 120 python3 bench/gpu/torch_flex_na2d.py "$OUT/na2d-flex.csv" 2>&1 | tail -2
