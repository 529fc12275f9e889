#!/usr/bin/env bash
# One device call for the 16-bit variant table (issue 14): `check --device cuda --dtype
# half,bfloat16` (every registry variant in fp16 and bf16 against the fp64 reference on the
# rounded inputs, then exact attention's 16-bit prefill cases; $PARTS processes, `--part
# k/$PARTS`), then our variant table (`bench --variants --dtype half,bfloat16`) and PyTorch
# FlexAttention (torch.compile'd, block masks; bench/gpu/torch_flex.py --dtype
# float16,bfloat16), B=1, H=16, N 4096 and 16384, D 64 and 128, and the two joined with
# ours/Flex (Flex ms / our ms) per row (bench/gpu/variants_table.py). Logs, CSVs and the
# markdown table under $OUT (6 files).
# Usage on the GPU machine (repo root, after the self-contained publish into .gpu/app.txz, or
# .gpu/app.tgz): bash bench/gpu/variants-half.sh
# Limits, so that the call stays under the device's 600 s: check $CHECK_LIMIT s per part
# (default 150), ours $OURS_LIMIT (120), Flex stops between rows after $FLEX_LIMIT (250; it
# compiles one kernel per variant, shape and dtype) and is killed 40 s later.
# A subset: SEQS (default 4096,16384), OURS_VARIANT (our spec, e.g. sink4-window512; default
# the whole table) with FLEX_ONLY (torch_flex.py's name of it, e.g. sinks4-window512), and
# PARTS=0 to skip the check.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
if [ -f .gpu/app.txz ]; then tar xJf .gpu/app.txz -C run; else tar xzf .gpu/app.tgz -C run; fi
APP=run/app/managed
PARTS=${PARTS:-8}
FLEX_LIMIT=${FLEX_LIMIT:-250}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for ((k = 0; k < PARTS; k++)); do
  (timeout ${CHECK_LIMIT:-150} $APP check --device cuda --dtype half,bfloat16 --part $k/$PARTS \
     > "$OUT/check-$k.txt" 2>&1
   echo "check part $k/$PARTS rc=$?" >> "$OUT/check-$k.txt") &
done
wait
# One log: at most 8 files come back from $OUT.
for ((k = 0; k < PARTS; k++)); do cat "$OUT/check-$k.txt"; rm "$OUT/check-$k.txt"; done \
  > "$OUT/check.txt"
python3 bench/gpu/check_summary.py "$OUT/check.txt"
SEQS=${SEQS:-4096,16384}
which="--variants"; [ -n "${OURS_VARIANT:-}" ] && which="--variant $OURS_VARIANT"
flex_only=""; [ -n "${FLEX_ONLY:-}" ] && flex_only="--only $FLEX_ONLY"
timeout ${OURS_LIMIT:-120} $APP bench $which --device cuda --dtype half,bfloat16 \
  --seq $SEQS --dim 64,128 --heads 16 --out "$OUT/ours-variants-half.csv" \
  > "$OUT/ours-variants-half.txt" 2>&1 || echo "ours: rc=$? (see ours-variants-half.txt)"
PYTHONUNBUFFERED=1 timeout $((FLEX_LIMIT + 40)) python3 bench/gpu/torch_flex.py \
  "$OUT/flex-half.csv" "$FLEX_LIMIT" 64,128 --dtype float16,bfloat16 --seq $SEQS $flex_only \
  > "$OUT/flex-half.txt" 2>&1 \
  || echo "flex: rc=$? (see flex-half.txt)"
grep -E "rror|deadline" "$OUT/flex-half.txt" | tail -5
python3 bench/gpu/variants_table.py "$OUT/ours-variants-half.csv" "$OUT/flex-half.csv" \
  | tee "$OUT/variants-half.md"
