#!/usr/bin/env bash
# One device call for decode: `managed bench --decode` on CUDA (batch 1 and 8; 1 and 4 query
# rows; 32/8 heads, D=128; 8k, 32k, 128k keys; float, half, bfloat16; contiguous and 16-row
# pages) and PyTorch SDPA (enable_gqa, fp32 and fp16) in the same call, each measuring the
# device copy bandwidth; then ptxas registers of the decode kernel. Results under $OUT.
# Usage on the GPU machine (repo root, after the self-contained publish into .gpu/app.tgz):
# bash bench/gpu/decode.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
[ -x run/app/managed ] || tar xzf .gpu/app.tgz -C run
APP=run/app/managed
KEYS=${KEYS:-8192,32768,131072}
for batch in 1 8; do
  keys=$KEYS; [ $batch = 8 ] && keys=${KEYS8:-8192,32768}
  timeout 300 $APP bench --decode --device cuda --batch $batch --rows 1,4 --keys $keys \
    --dim 128 --heads 32 --kv-heads 8 --dtype ${STORAGE:-float,half,bfloat16} \
    --out "$OUT/decode-b$batch.csv" 2>&1 | tee -a "$OUT/decode.txt"
done
python3 bench/gpu/torch_decode.py "$OUT/torch-decode.csv" 1,8 1,4 $KEYS 2>&1 | tee "$OUT/torch-decode.txt"
mkdir -p ptx && $APP devices --ptx-out ptx > /dev/null 2>&1
for f in ptx/decode-*.ptx; do
  echo "$f: $(/usr/local/cuda/bin/ptxas -arch=sm_90 -v "$f" -o /dev/null 2>&1 \
    | grep -Eo 'Used [0-9]+ registers|[0-9]+ bytes spill stores' | tr '\n' ' ')"
done | tee "$OUT/ptxas-decode.txt"
