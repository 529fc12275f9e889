#!/usr/bin/env bash
# Everything for the GPU machine in one call: the HF parity fixtures (CPU, about a minute), then
# the shipped model's training (GPU, the budget in seconds plus about a minute).
#
#   bash tools/model/gpu-run.sh [SECONDS]        (repo root as cwd, .gpu carried, $OUT set)
#
# What comes back (8 files):
#   $OUT/model/   the trained model, 7 files (config.json, generation_config.json,
#                 model.safetensors, tokenizer.json, vocab.json, merges.txt, tokenizer_config.json)
#   $OUT/aux.tar  fixtures.log, train.log, train/tokenizer-check.json, train/sample.json,
#                 hf/<fixture>/ and hf/<fixture>-bf16/ (the folders for tests/Fixtures/hf)
# Exits non-zero when either step failed; the tar is written in any case.
set -uo pipefail
: "${OUT:?set OUT to the output folder}"
secs=${1:-240}
export PYTHONUNBUFFERED=1
aux=$(mktemp -d)
mkdir -p "$aux/train"

nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
echo "== fixtures"
timeout 150 python3 tools/model/make-fixtures.py --out "$aux/hf" 2>&1 | tee "$aux/fixtures.log"
fixtures_rc=${PIPESTATUS[0]}
echo "== training, $secs s"
timeout $((secs + 180)) python3 tools/model/train.py --corpus .gpu/corpus/kjv.txt \
    --out "$OUT/model" --aux "$aux/train" --seconds "$secs" 2>&1 | tee "$aux/train.log"
train_rc=${PIPESTATUS[0]}

tar -C "$aux" -cf "$OUT/aux.tar" .
ls -la "$OUT" "$OUT/model" 2>/dev/null
echo "fixtures exit $fixtures_rc, training exit $train_rc," \
    "aux.tar $(stat -c %s "$OUT/aux.tar") bytes"
[ "$fixtures_rc" -eq 0 ] && [ "$train_rc" -eq 0 ]
