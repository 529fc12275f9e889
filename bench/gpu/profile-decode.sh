#!/usr/bin/env bash
# Nsight Compute on one launch of the decode kernel (float cache, batch 1, 1 query row, 32/8
# heads, D=128, 32k keys). Usage on the GPU machine (repo root): bash bench/gpu/profile-decode.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
[ -x run/app/managed ] || tar xzf .gpu/app.tgz -C run
APP=run/app/managed
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for storage in float half; do
  timeout 150 $NCU --section SpeedOfLight --section Occupancy --section WarpStateStats \
    --section SchedulerStats --section LaunchStats --section InstructionStats \
    --section MemoryWorkloadAnalysis -k regex:Partial -s 2 -c 1 \
    $APP bench --decode --device cuda --batch 1 --rows 1 --keys 32768 --dtype $storage \
    > "$OUT/ncu-decode-$storage.txt" 2>&1
  grep -E "Duration|Throughput|Achieved Occupancy|Theoretical Occupancy|Registers|Stall|Issue|Executed Ipc|Executed Instructions|Waves|Block Limit" \
    "$OUT/ncu-decode-$storage.txt" | head -40
done
