#!/bin/bash
# CPU A/B of the shipped model's decode on 2 pinned cores of the GPU host: a base build, this
# build with --threads 1 and with --threads 2 (HostWorkers); interleaved rounds.
# Before the call: .gpu/app.txz is this build's self-contained publish (DEVICE.md), and
# .gpu/base holds the base build's Managed.*.dll and managed.dll (they replace this build's
# in a copy of the app). Run from the repo root with .gpu carried.
rm -rf run; mkdir -p run && tar xJf .gpu/app.txz -C run
cp -r run/app run/base && cp .gpu/base/* run/base/
lscpu > $OUT/lscpu.txt; lscpu -p=CPU,CORE,SOCKET | grep -v '#' > $OUT/topo.txt
CPUS=$(awk -F, '!($2 in used) {used[$2]=1; print $1}' $OUT/topo.txt | sed -n '2,3p' | paste -sd,)
echo "pinned to $CPUS" | tee $OUT/ab.txt
for r in 1 2 3 4; do
  for cfg in base new1 new2; do
    case $cfg in base) app=run/base/managed; extra="";; new1) app=run/app/managed; extra="--threads 1";; new2) app=run/app/managed; extra="--threads 2";; esac
    taskset -c $CPUS $app bench --model models/kjv-llama --batch 1,8 $extra 2>&1 | tail -2 | sed "s/^/$cfg /"
  done
done 2>&1 | tee -a $OUT/ab.txt
taskset -c $CPUS run/app/managed bench --random-llama-1b /tmp/llama-1b > /dev/null 2>&1
for cfg in base new2; do
  case $cfg in base) app=run/base/managed; extra="";; new2) app=run/app/managed; extra="--threads 2";; esac
  taskset -c $CPUS $app bench --model /tmp/llama-1b --batch 1 --new-tokens 32 --runs 2 $extra 2>&1 | tail -1 | sed "s/^/1b $cfg /"
done 2>&1 | tee -a $OUT/ab.txt
