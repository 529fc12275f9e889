#!/usr/bin/env bash
# One device call for correctness on CUDA in every precision: the variant table in fp16 and
# bf16 (`check --dtype half,bfloat16`, $PARTS processes of `--part k/$PARTS`: the fp64
# reference on the host is the slow side, so the parts spread over the host's cores), the
# TF32 prefill (`check --precision tf32`) and the decode checks (`check --decode`), all at
# once, each stopped after $CHECK_LIMIT s (default 200). One log ($OUT/check-dtypes.txt) and a
# summary per type. Usage on the GPU machine (repo root, after the self-contained publish into
# .gpu/app.txz): PARTS=12 bash bench/gpu/check-dtypes.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
[ -x run/app/managed ] || tar xJf .gpu/app.txz -C run
APP=run/app/managed
PARTS=${PARTS:-12}
LIMIT=${CHECK_LIMIT:-200}
tmp=$(mktemp -d)
(timeout $LIMIT $APP check --device cuda --decode > "$tmp/decode.txt" 2>&1
 echo "check --decode rc=$?" >> "$tmp/decode.txt") &
(timeout $LIMIT $APP check --device cuda --precision tf32 > "$tmp/tf32.txt" 2>&1
 echo "check --precision tf32 rc=$?" >> "$tmp/tf32.txt") &
for ((k = 0; k < PARTS; k++)); do
  (timeout $LIMIT $APP check --device cuda --dtype half,bfloat16 --part $k/$PARTS \
     > "$tmp/dtype-$k.txt" 2>&1
   echo "check --dtype part $k/$PARTS rc=$?" >> "$tmp/dtype-$k.txt") &
done
wait
cat "$tmp"/*.txt > "$OUT/check-dtypes.txt"
python3 bench/gpu/check_summary.py "$OUT/check-dtypes.txt"
