"""Hugging Face transformers prefill speed, the peer of `managed bench --model DIR
--prompt-tokens P --new-tokens 2` (its prefill/s column): the checkpoint loaded in bf16 (eager
and SDPA attention), one forward pass over P random prompt ids (seed 0, batch 1) keeping the
last position's logits only (logits_to_keep=1, as generate's prefill does), then an argmax.
One warm-up pass, then 5 timed with torch.cuda.synchronize() around each; the median is kept.
prefill tokens/s = P / seconds.
Usage: python3 bench/gpu/hf_prefill.py MODEL_DIR OUT.csv P1,P2,..."""
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM

directory, out, prompts = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3].split(",")]
rows = []
for attn in ("sdpa", "eager"):
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.bfloat16,
                                                 attn_implementation=attn).cuda().eval()
    vocab = model.config.vocab_size
    for p in prompts:
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, vocab, (1, p), generator=g).cuda()
        times = []
        with torch.no_grad():
            for run in range(6):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                logits = model(ids, logits_to_keep=1, use_cache=True).logits
                logits[:, -1].argmax(-1).item()
                torch.cuda.synchronize()
                if run > 0:
                    times.append(time.perf_counter() - t0)
        s = statistics.median(times)
        print(f"HF bf16 {attn} {directory} prompt {p}: {s * 1e3:.2f} ms, {p / s:.0f} tokens/s",
              flush=True)
        rows.append((directory, attn, p, s * 1e3, p / s))
    del model
    torch.cuda.empty_cache()
with open(out, "w") as fh:
    fh.write("model,attn,prompt_tokens,ms,prefill_tps\n")
    for r in rows:
        fh.write(",".join(str(v) for v in r) + "\n")
