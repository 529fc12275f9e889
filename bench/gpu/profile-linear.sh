#!/usr/bin/env bash
# Nsight Compute on the three chunked linear-attention kernels (B=1, H=16, N=65536, causal,
# normalized) for D = 64 and 128: the first call's launches (chunk states, scan, outputs).
# Usage on the GPU machine (repo root): bash bench/gpu/profile-linear.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
[ -x run/app/managed ] || tar xzf .gpu/app.tgz -C run
APP=run/app/managed
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for d in 64 128; do
  timeout 250 $NCU --section SpeedOfLight --section Occupancy --section WarpStateStats \
    --section SchedulerStats --section MemoryWorkloadAnalysis -k regex:"Chunk|Scan" -c 3 \
    $APP bench --linear --device cuda --seq 65536 --dim $d --heads 16 > "$OUT/ncu-linear-d$d.txt" 2>&1
  grep -E "Chunk|Scan|Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Registers|Stall|Issued Ipc|Bank|Block Limit" "$OUT/ncu-linear-d$d.txt" | head -60
done
