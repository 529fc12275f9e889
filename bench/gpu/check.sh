#!/usr/bin/env bash
# One device call for correctness: `check --device cuda --large`, then `check --device opencl`
# (PoCL on the host CPU), each split into $PARTS parallel processes (`--part k/PARTS`: the fp64
# reference on the host is the slow side). Logs under $OUT; failures and each part's summary
# are printed. Usage on the GPU machine (repo root, after the self-contained publish into
# .gpu/app.tgz): bash bench/gpu/check.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
tar xzf .gpu/app.tgz -C run
APP=run/app/managed
PARTS=${PARTS:-4}
for device in cuda opencl; do
  args="--device $device"; [ "$device" = cuda ] && args="$args --large"
  for ((k = 0; k < PARTS; k++)); do
    (timeout ${CHECK_LIMIT:-400} $APP check $args --part $k/$PARTS > "$OUT/check-$device-$k.txt" 2>&1
     echo "$device part $k rc=$?" >> "$OUT/check-$device-$k.txt") &
  done
  wait
  for ((k = 0; k < PARTS; k++)); do
    grep -E "^(variants|layouts|decode):|rc=" "$OUT/check-$device-$k.txt"
    grep -E "FAIL|xception" "$OUT/check-$device-$k.txt" | head -5
  done
done
true
