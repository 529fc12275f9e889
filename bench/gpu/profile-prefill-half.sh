#!/usr/bin/env bash
# Nsight Compute on one launch of the tensor-core prefill kernel (B=1, H=16, N=4096, not causal,
# fp16 and bf16, D=64 and 128). Usage on the GPU machine (repo root, after the self-contained
# publish): bash bench/gpu/profile-prefill-half.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
if [ ! -x run/app/managed ]; then
  if [ -f .gpu/app.txz ]; then tar xJf .gpu/app.txz -C run; else tar xzf .gpu/app.tgz -C run; fi
fi
APP=run/app/managed
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for storage in half bfloat16; do
  for d in 64 128; do
    f="$OUT/ncu-prefill-$storage-d$d.txt"
    timeout 120 $NCU --section SpeedOfLight --section Occupancy --section WarpStateStats \
      --section SchedulerStats --section LaunchStats --section InstructionStats \
      --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
      --section MemoryWorkloadAnalysis_Tables -k regex:ForwardKernel -s 2 -c 1 \
      $APP bench --device cuda --dtype $storage --seq 4096 --dim $d --heads 16 > "$f" 2>&1
    echo "== $storage D=$d"
    grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Issue Slots Busy|Executed Ipc A|Warp Cycles Per Issued|Stall|Bank|bank|Tensor|Pipe" "$f" | head -40
  done
done
