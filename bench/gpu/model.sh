#!/usr/bin/env bash
# One device call for the model speed benchmarks (issue 13, "Speed"): makes a random-initialized
# Llama-shaped checkpoint of 1.1 B parameters in bf16 with transformers (TinyLlama's shape:
# hidden 2048, 22 layers, 32 heads over 4 KV heads, intermediate 5632, vocab 32000, rope_theta
# 10000, untied; save_pretrained to /tmp/llama-1b) and uses the shipped models/kjv-llama; on each
# runs our `managed bench --model DIR --device cuda --batch 1,8` (128 random prompt tokens, 128
# greedy new tokens; TTFT, prefill, decode and generate tokens/s, bandwidth bound) and then
# bench/gpu/hf_generate.py (HF generate: eager and SDPA, fp32 and bf16, batch 1 and 8).
# Ours runs first on each model so its rows exist even if HF's hit their caps.
# Expected: about 4 minutes (checkpoint ~30 s, ours ~1 min per model with loads and kernel
# compiles, HF ~1.5 min on the 1B model and ~0.5 min on kjv). Every step has a timeout
# (90 + 100 + 60 + 180 + 80 s = 8.5 min at worst), and hf_generate.py trims its repeats or new
# tokens to its budget, printing what it cut.
# Usage on the GPU machine (repo root, after the self-contained publish into .gpu/app.tgz):
# bash bench/gpu/model.sh          -> $OUT/model.txt and 4 CSV files
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
[ -x run/app/managed ] || tar xzf .gpu/app.tgz -C run
APP=run/app/managed
LOG="$OUT/model.txt"
T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOG"
timeout 90 python3 - <<'PY' 2>&1 | tee -a "$LOG"
import time, torch, transformers
from transformers import LlamaConfig, LlamaForCausalLM
t0 = time.perf_counter()
torch.manual_seed(0)
kw = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
          num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
          max_position_embeddings=2048, rms_norm_eps=1e-5, tie_word_embeddings=False,
          bos_token_id=1, eos_token_id=2)
try:
    cfg = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **kw)
except TypeError:
    cfg = LlamaConfig(rope_theta=10000.0, **kw)
with torch.device("cuda"):
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
model.save_pretrained("/tmp/llama-1b")
n = sum(p.numel() for p in model.parameters())
print(f"llama-1b: {n / 1e9:.3f} B parameters, bf16, written to /tmp/llama-1b in "
      f"{time.perf_counter() - t0:.0f} s (transformers {transformers.__version__})")
PY
for m in /tmp/llama-1b models/kjv-llama; do
  name=$(basename $m)
  echo "== managed bench --model $m --device cuda --batch 1,8 ($((SECONDS - T0)) s)" \
    | tee -a "$LOG"
  limit=${LIMIT_1B:-100}; [ $name = kjv-llama ] && limit=${LIMIT_KJV:-60}
  timeout $limit $APP bench --model $m --device cuda --batch 1,8 \
    --out "$OUT/managed-$name.csv" 2>&1 | tee -a "$LOG"
done
# HF: budget in seconds per model (hf_generate.py caps repeats / new tokens to stay inside).
for m in /tmp/llama-1b models/kjv-llama; do
  name=$(basename $m); budget=${HF_BUDGET_1B:-160}
  [ $name = kjv-llama ] && budget=${HF_BUDGET_KJV:-60}
  echo "== hf_generate.py $m (budget $budget s; $((SECONDS - T0)) s)" | tee -a "$LOG"
  timeout $((budget + 20)) python3 bench/gpu/hf_generate.py $m "$OUT/hf-$name.csv" $budget \
    2>&1 | grep -v -i "warn" | tee -a "$LOG"
done
echo "== done in $((SECONDS - T0)) s" | tee -a "$LOG"
