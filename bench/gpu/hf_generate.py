"""Hugging Face transformers `generate` speed on a model folder: the peer of `managed bench
--model DIR --device cuda`.

Usage: python3 bench/gpu/hf_generate.py MODEL_DIR OUT.csv [BUDGET_S]

For eager and SDPA attention, fp32 and bf16 (the checkpoint loaded with
AutoModelForCausalLM.from_pretrained and cast), batch 1 and 8: random prompt ids (128 per
sequence, seed 0, attention mask all ones), 128 greedy new tokens (min_new_tokens =
max_new_tokens, so every run generates all of them). One warm-up generate per model load and
batch (16 new tokens: it runs every kernel of the timed call), then 3 timed generates with
torch.cuda.synchronize() around each; the median is kept. tokens/s = batch x new tokens /
seconds, as `managed bench` reports "generate/s" (prefill + decode). Each row also gives the
bandwidth bound: bytes read per decode step (the weight matrices, all but the input embedding,
plus the KV cache at the mean length) against the device-to-device copy bandwidth measured here
(read + written, as `managed bench --decode` measures it).

BUDGET_S (default 240) caps the script: a config whose warm-up predicts a timed run beyond its
share of what is left runs fewer repeats or fewer new tokens, and says so; configs listed in
SKIP (env, e.g. "fp32-eager-8") are skipped and printed as skipped.
"""
import csv
import os
import statistics
import sys
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM

PROMPT = 128
NEW = 128
BATCHES = (1, 8)
ATTN = ("eager", "sdpa")
DTYPES = (("fp32", torch.float32), ("bf16", torch.bfloat16))


def copy_bandwidth():
    """GB/s (read + written) of a 1 GiB device-to-device copy, median of 20."""
    a = torch.empty(1 << 28, device="cuda")
    b = torch.empty_like(a)
    b.copy_(a)
    torch.cuda.synchronize()
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        b.copy_(a)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    del a, b
    return 2 * (1 << 28) * 4 / statistics.median(times) / 1e9


def generate(model, ids, new):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new,
                         min_new_tokens=new, do_sample=False, num_beams=1,
                         pad_token_id=model.config.eos_token_id if isinstance(
                             model.config.eos_token_id, int) else 0)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    assert out.shape[1] == ids.shape[1] + new, out.shape
    return dt


def main():
    model_dir, out_csv = sys.argv[1], sys.argv[2]
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 240.0
    skip = set(filter(None, os.environ.get("SKIP", "").split(",")))
    start = time.perf_counter()
    name = os.path.basename(os.path.normpath(model_dir))
    cfg = AutoConfig.from_pretrained(model_dir)
    bandwidth = copy_bandwidth()
    print(f"{name}: {torch.cuda.get_device_name()}, copy bandwidth {bandwidth:.0f} GB/s "
          f"(read + written); torch {torch.__version__}", flush=True)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    f = open(out_csv, "w", newline="")
    writer = None
    configs = [(a, d, t) for d, t in DTYPES for a in ATTN]
    for ci, (attn, dname, dtype) in enumerate(configs):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype,
                                                     attn_implementation=attn).cuda().eval()
        size = torch.finfo(dtype).bits // 8
        embed = model.get_input_embeddings().weight
        tied = model.get_output_embeddings().weight.data_ptr() == embed.data_ptr()
        params = sum(p.numel() for p in model.parameters())
        weight_bytes = (params - (0 if tied else embed.numel())) * size
        for batch in BATCHES:
            key = f"{dname}-{attn}-{batch}"
            if key in skip:
                print(f"  {key}: skipped (SKIP)", flush=True)
                continue
            gen = torch.Generator().manual_seed(0)
            ids = torch.randint(0, cfg.vocab_size, (batch, PROMPT), generator=gen).cuda()
            with torch.inference_mode():
                warm = generate(model, ids, 16)
                left = budget - (time.perf_counter() - start)
                share = left / (2 * (len(configs) - ci))   # this batch's part of what is left
                per_run = warm * NEW / 16
                new, repeats = NEW, 3
                if per_run * repeats > share:
                    repeats = max(1, int(share // per_run))
                    if per_run > share:
                        new = max(16, int(NEW * share / per_run))
                    print(f"  {key}: capped to {repeats} run(s) of {new} new tokens "
                          f"(warm-up predicts {per_run:.1f} s a run, {share:.0f} s left)",
                          flush=True)
                times = [generate(model, ids, new) for _ in range(repeats)]
            dt = statistics.median(times)
            tps = batch * new / dt
            mean_len = PROMPT + (new - 1) / 2
            kv_bytes = cfg.num_hidden_layers * batch * kv_heads * mean_len * 2 * head_dim * size
            bound = batch * bandwidth * 1e9 / (weight_bytes + kv_bytes)
            row = dict(model=name, attention=attn, dtype=dname, batch=batch, prompt_tokens=PROMPT,
                       new_tokens=new, runs=repeats, seconds=round(dt, 4),
                       tokens_per_s=round(tps, 2), weight_bytes=weight_bytes,
                       kv_bytes=int(kv_bytes), bandwidth_gbps=round(bandwidth, 1),
                       bound_tps=round(bound, 1), share=round(tps / bound, 4))
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(row.keys()))
                writer.writeheader()
            writer.writerow(row)
            f.flush()   # rows so far survive a timeout
            print(f"  {dname:4} {attn:5} batch {batch}: {tps:8.1f} tokens/s "
                  f"({new} new, median of {repeats}: {dt:.2f} s; bound {bound:.0f}, "
                  f"share {tps / bound:.1%})", flush=True)
        del model
        torch.cuda.empty_cache()
    f.close()
    print(f"{name}: done in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
