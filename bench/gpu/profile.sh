#!/usr/bin/env bash
# Nsight Compute on one launch of the CUDA kernel (B=1, H=16, N=4096) per head dim, plus the
# correctness checks. Usage on the GPU machine (repo root): bash bench/gpu/profile.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
[ -x run/app/managed ] || tar xzf .gpu/app.tgz -C run
APP=run/app/managed
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for d in 64 128; do
  timeout 150 $NCU --section SpeedOfLight --section Occupancy --section WarpStateStats \
    --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    --section InstructionStats -k regex:Forward -c 1 \
    $APP bench --device cuda --seq 4096 --dim $d --heads 16 > "$OUT/ncu-d$d.txt" 2>&1
  grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Registers|Stall|Issue Slot|Executed Ipc|L1/TEX Hit|Bank" "$OUT/ncu-d$d.txt" | head -30
done
