#!/usr/bin/env bash
# One device call for the linear layer's GEMM on the tensor cores (issue 14): `managed bench
# --gemm` on CUDA (bf16 weights, x fp32; exact = the fp32 CUDA-core kernel, weight-type = x
# rounded to bf16 and MmaGemmKernel; every row first checked on 256 sampled outputs against
# fp64 within the documented bound) and torch.matmul(x, w.t()) in bf16 on the same shapes in
# the same call, joined with ratios (ours weight-type / torch). Shapes: 4096^3, and the
# projections of the shipped models/kjv-llama (hidden 256, 8 x 32 query and 2 x 32 KV dims,
# intermediate 768, vocab 4096) and of TinyLlama 1.1B (hidden 2048, 32 x 64 query and 4 x 64
# KV dims, intermediate 5632, vocab 32000) at m = 128 and 1024 tokens. Then (MODEL=1, the
# default) model prefill: our random 1.1 B bf16 checkpoint (`bench --random-llama-1b`) and
# the shipped model under `bench --model --linear-precision exact,weight-type` (prompts 1024
# and 128, 2 new tokens), Hugging Face transformers bf16 prefill on the same checkpoint
# (bench/gpu/hf_prefill.py), and greedy text of the shipped model at both precisions. Last
# (TUNE=1, the default), the weight-type rows again with the block class forced (--tc-rows 64
# and 128) to check the rule of Linear.UsesLargeBlocks.
# Usage on the GPU machine (repo root, after the self-contained publish into .gpu/app.txz):
# bash bench/gpu/gemm-half.sh      -> $OUT/gemm.txt (joined table) and the raw logs and CSVs
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
if [ -f .gpu/app.txz ]; then tar xJf .gpu/app.txz -C run; else tar xzf .gpu/app.tgz -C run; fi
APP=run/app/managed
SHAPES=4096x4096x4096
for m in 128 1024; do
  SHAPES+=",${m}x256x256,${m}x64x256,${m}x768x256,${m}x256x768,${m}x4096x256"
  SHAPES+=",${m}x2048x2048,${m}x256x2048,${m}x5632x2048,${m}x2048x5632,${m}x32000x2048"
done
timeout 120 $APP bench --gemm --device cuda --gemm-shapes "$SHAPES" \
  --linear-precision exact,weight-type --out "$OUT/ours-gemm.csv" > "$OUT/ours-gemm.txt" 2>&1
echo "ours rc=$?" >> "$OUT/ours-gemm.txt"; tail -2 "$OUT/ours-gemm.txt"
PYTHONUNBUFFERED=1 timeout 60 python3 bench/gpu/torch_matmul_half.py "$OUT/torch-gemm.csv" \
  "$SHAPES" > "$OUT/torch-gemm.txt" 2>&1; tail -1 "$OUT/torch-gemm.txt"
python3 - "$OUT" <<'PY' | tee "$OUT/gemm.txt"
import csv, os, sys
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    return list(csv.DictReader(open(p))) if os.path.exists(p) else []
torch = {(r["m"], r["n"], r["k"]): float(r["tflops"]) for r in rows("torch-gemm.csv")}
ours = {}
for r in rows("ours-gemm.csv"):
    ours.setdefault((r["m"], r["n"], r["k"]), {})[r["precision"]] = (float(r["tflops"]), float(r["err_over_bound"]))
print("|     m |     n |     k | torch bf16 | ours exact | ours weight-type | err/bound | weight-type / torch |")
print("|---|---|---|---|---|---|---|---|")
for key in ours:
    t = torch.get(key)
    e = ours[key].get("exact", (float("nan"), 0))
    w = ours[key].get("weight-type", (float("nan"), 0))
    ratio = f"{w[0] / t:.2f}" if t else "-"
    print(f"| {key[0]:>5} | {key[1]:>5} | {key[2]:>5} | {t or float('nan'):10.1f} | {e[0]:10.1f} | {w[0]:16.1f} | {w[1]:9.3f} | {ratio:>19} |")
PY
[ "${MODEL:-1}" = 1 ] || exit 0
LOG="$OUT/model.txt"
timeout 45 $APP bench --random-llama-1b /tmp/llama-1b > /dev/null 2>&1; echo "checkpoint rc=$?" | tee -a "$LOG"
for P in 1024 128; do
  timeout 55 $APP bench --model /tmp/llama-1b --device cuda --prompt-tokens $P --new-tokens 2 \
    --runs 3 --linear-precision exact,weight-type --out "$OUT/model-1b-$P.csv" 2>&1 | tee -a "$LOG"
done
PYTHONUNBUFFERED=1 timeout 60 python3 bench/gpu/hf_prefill.py /tmp/llama-1b "$OUT/hf-prefill-1b.csv" \
  128,1024 2>&1 | grep -v Warning | tee -a "$LOG"
timeout 30 $APP bench --model models/kjv-llama --device cuda --prompt-tokens 1000 --new-tokens 2 \
  --runs 3 --linear-precision exact,weight-type --out "$OUT/model-kjv.csv" 2>&1 | tee -a "$LOG"
for p in exact weight-type; do
  echo "generate kjv-llama --linear-precision $p:" >> "$LOG"
  timeout 20 $APP generate --model models/kjv-llama --device cuda --greedy --max-new 24 \
    --prompt "In the beginning" --linear-precision $p >> "$LOG" 2>&1
done
tail -4 "$LOG"
# Block classes forced (TUNE=1): weight-type rows at 64 x 64 and at 128 x 128 blocks.
[ "${TUNE:-1}" = 1 ] || exit 0
for rows in 64 128; do
  timeout 40 $APP bench --gemm --device cuda --gemm-shapes "$SHAPES" --linear-precision weight-type \
    --tc-rows $rows --out "$OUT/ours-gemm-rows$rows.csv" > "$OUT/ours-gemm-rows$rows.txt" 2>&1
  echo "rows $rows rc=$?"
done
python3 - "$OUT" <<'PY' | tee -a "$OUT/gemm.txt"
import csv, os, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name)
    return {(r["m"], r["n"], r["k"]): float(r["tflops"]) for r in csv.DictReader(open(p)) if r["precision"] == "weight-type"} if os.path.exists(p) else {}
auto, r64, r128 = load("ours-gemm.csv"), load("ours-gemm-rows64.csv"), load("ours-gemm-rows128.csv")
print("\n| m | n | k | weight-type (rule) | 64 x 64 blocks | 128 x 128 blocks |")
print("|---|---|---|---|---|---|")
for key, v in auto.items():
    print(f"| {key[0]} | {key[1]} | {key[2]} | {v:.1f} | {r64.get(key, float('nan')):.1f} | {r128.get(key, float('nan')):.1f} |")
PY
