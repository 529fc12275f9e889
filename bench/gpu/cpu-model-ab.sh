#!/bin/bash
# CPU A/B of the shipped model's decode on 2 pinned cores of the GPU host, interleaved rounds:
# this build with --threads 1 and 2, and each other build named in BUILDS (default "base") as
# it was. Before the call: .gpu/app.txz is this build's self-contained publish (DEVICE.md);
# .gpu/<build>/ holds that build's Managed.*.dll and managed.dll, which replace this build's in
# a copy of the app. PROFILE=<build> also runs that build once more and keeps its stderr (an
# instrumented build's per-block times). Run from the repo root with .gpu carried.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
rm -rf run; mkdir -p run && tar xJf .gpu/app.txz -C run
BUILDS=${BUILDS:-base}
for b in $BUILDS ${PROFILE:-}; do cp -r run/app run/$b && cp .gpu/$b/* run/$b/; done
lscpu > $OUT/lscpu.txt; lscpu -p=CPU,CORE,SOCKET | grep -v '#' > $OUT/topo.txt
CPUS=$(awk -F, '!($2 in used) {used[$2]=1; print $1}' $OUT/topo.txt | sed -n '2,3p' | paste -sd,)
echo "pinned to $CPUS" | tee $OUT/ab.txt
for r in 1 2 3 4; do
  for cfg in $BUILDS new1 new2; do
    case $cfg in new1) app=run/app/managed; extra="--threads 1";; new2) app=run/app/managed; extra="--threads 2";; *) app=run/$cfg/managed; extra="";; esac
    taskset -c $CPUS $app bench --model models/kjv-llama --batch 1,8 $extra 2>/dev/null | tail -2 | sed "s/^/$cfg /"
  done
done 2>&1 | tee -a $OUT/ab.txt
if [ -n "${PROFILE:-}" ]; then
  taskset -c $CPUS run/$PROFILE/managed bench --model models/kjv-llama --batch 1,8 --runs 2 \
    > $OUT/profile.txt 2>&1
fi
