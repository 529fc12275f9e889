#!/usr/bin/env python3
"""Trains the shipped model: a byte-level BPE tokenizer and a small Llama on the KJV text.

Runs on the GPU machine (PyTorch 2.11, transformers 5.x, tokenizers, safetensors; no network):

    PYTHONUNBUFFERED=1 python3 tools/model/train.py --corpus .gpu/corpus/kjv.txt \
        --out $OUT/model --aux /tmp/aux --seconds 240

Steps, each printed as it goes:
  1. split the corpus (one verse a line): the last 1% of lines is the validation text;
  2. train a GPT-2 style byte-level BPE (vocab 4096, <|endoftext|> = id 0 as bos and eos) on the
     training lines only;
  3. build a LlamaForCausalLM from random init (8 heads over 2 KV heads, hidden 256, 8 layers,
     tied embeddings, 1024 positions, rope_theta 10000), count its parameters and stop if the bf16
     weights would pass 14 MiB;
  4. train it in bf16 autocast with AdamW and a warmup + cosine schedule over a wall-clock budget,
     on 512-token windows that start at a verse (bos first); the validation loss is measured
     every --eval-seconds and the best weights are kept;
  5. save the best weights as bf16 with save_pretrained plus the tokenizer files into --out
     (7 files: config.json, generation_config.json, model.safetensors, tokenizer.json,
     vocab.json, merges.txt, tokenizer_config.json);
  6. reload --out with from_pretrained and check it: validation loss with the bf16 weights, and
     a greedy continuation of "In the beginning" computed in float64 on the CPU; write
     tokenizer-check.json and sample.json into --aux (never into --out).
"""

import argparse
import inspect
import json
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import numpy as np
import torch
import torch.nn.functional as F

BOS = "<|endoftext|>"
MAX_WEIGHT_BYTES = 14 * 1024 * 1024  # 14 MiB for model.safetensors
MAX_OUT_FILES = 7
PROMPT = "In the beginning"

# Strings whose ids the C# tokenizer is tested against (tokenizer-check.json).
CHECK_STRINGS = [
    "In the beginning God created the heaven and the earth.",
    "And God said, Let there be light: and there was light.",
    "Jesus wept.\n",
    " leading space, trailing space ",
    "multiple   spaces\tand a tab\nand\n\nblank lines",
    "Numbers 3:16 and 1234567890.",
    "It's the LORD's; they're we've I'm you'll he'd.",
    "naïve café façade — “quoted” ‘text’ … 日本語 🙂",
    "",
]


def log(msg):
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fail(msg):
    print(f"[train] FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


# --- tokenizer -------------------------------------------------------------------------------


def train_tokenizer(lines, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    # GPT-2's byte-level scheme: no prefix space, GPT-2's split regex, bytes mapped to printable
    # characters. The same options are what the C# side reads from vocab.json + merges.txt.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[BOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((line + "\n" for line in lines), trainer=trainer, length=len(lines))
    bos_id = tok.token_to_id(BOS)
    if bos_id != 0:
        fail(f"{BOS} got id {bos_id}, expected 0")
    # encode(text) adds bos in front (add_special_tokens=True); the training stream does not.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, bos_id)]
    )
    return tok, bos_id


def write_tokenizer_files(tok, out_dir, max_positions):
    tok.save(str(out_dir / "tokenizer.json"))
    written = tok.model.save(str(out_dir))  # vocab.json + merges.txt, GPT-2 format
    names = sorted(Path(p).name for p in written)
    if names != ["merges.txt", "vocab.json"]:
        fail(f"tokenizer model.save wrote {names}, expected merges.txt and vocab.json")
    vocab = json.loads((out_dir / "vocab.json").read_text(encoding="utf-8"))
    if vocab.get(BOS) != 0 or len(vocab) != tok.get_vocab_size():
        fail(f"vocab.json: {BOS} -> {vocab.get(BOS)}, {len(vocab)} entries, "
             f"tokenizer has {tok.get_vocab_size()}")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": BOS,
        "unk_token": None,
        "pad_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_positions,
        "added_tokens_decoder": {
            "0": {"content": BOS, "lstrip": False, "normalized": False, "rstrip": False,
                  "single_word": False, "special": True}
        },
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n",
                                                   encoding="utf-8")


def tokenizer_check(tok, out_dir):
    """Sample strings with their HF ids, for the C# tokenizer tests; also checks AutoTokenizer."""
    cases = []
    for text in CHECK_STRINGS:
        enc = tok.encode(text, add_special_tokens=False)
        with_bos = tok.encode(text).ids
        decoded = tok.decode(enc.ids, skip_special_tokens=False)
        if decoded != text:
            fail(f"tokenizer round trip failed: {text!r} -> {decoded!r}")
        cases.append({"text": text, "ids": enc.ids, "tokens": enc.tokens,
                      "ids_with_bos": with_bos})
    problems = []
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(out_dir))
        for case in cases:
            got = hf(case["text"])["input_ids"]
            if got != case["ids_with_bos"]:
                problems.append(f"AutoTokenizer({case['text']!r}) = {got}, "
                                f"tokenizers = {case['ids_with_bos']}")
            if hf.decode(case["ids"]) != case["text"]:
                problems.append(f"AutoTokenizer.decode differs for {case['text']!r}")
        log(f"AutoTokenizer loads {out_dir.name}: {type(hf).__name__}, "
            f"bos {hf.bos_token!r}={hf.bos_token_id}, eos {hf.eos_token!r}={hf.eos_token_id}")
    except Exception as e:  # the files are still usable by tokenizers and by the C# side
        problems.append(f"AutoTokenizer.from_pretrained failed: {type(e).__name__}: {e}")
    return {"bos_id": 0, "eos_id": 0, "add_prefix_space": False, "cases": cases}, problems


# --- data ------------------------------------------------------------------------------------


def encode_lines(tok, lines):
    encs = tok.encode_batch([line + "\n" for line in lines], add_special_tokens=False)
    starts, ids = [], []
    for e in encs:
        starts.append(len(ids))
        ids.extend(e.ids)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(starts, dtype=torch.long)


def eval_windows(stream, seq, bos_id):
    """Non-overlapping windows over a token stream: (n, seq + 1) with bos first, -1 = padding."""
    rows = []
    for i in range(0, len(stream), seq):
        chunk = stream[i:i + seq]
        row = torch.full((seq + 1,), -1, dtype=torch.long)
        row[0] = bos_id
        row[1:1 + len(chunk)] = chunk
        rows.append(row)
    return torch.stack(rows)


@torch.no_grad()
def mean_loss(model, windows, device, autocast, batch=16):
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        w = windows[i:i + batch].to(device)
        x, y = w[:, :-1].clamp(min=0), w[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                               ignore_index=-1, reduction="sum")
        total += loss.item()
        count += int((y >= 0).sum())
    model.train()
    return total / count


# --- model -----------------------------------------------------------------------------------


def make_config(vocab_size, args, bos_id):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        head_dim=args.hidden // args.heads,
        hidden_act="silu",
        max_position_embeddings=args.max_positions,
        rms_norm_eps=1e-5,
        initializer_range=0.02,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=bos_id,
        eos_token_id=bos_id,
        pad_token_id=None,
    )


def load_pretrained(cls, folder, dtype, attn):
    """from_pretrained with an explicit dtype (transformers 5 calls it dtype, 4.x torch_dtype)."""
    try:
        return cls.from_pretrained(str(folder), dtype=dtype, attn_implementation=attn)
    except TypeError:
        return cls.from_pretrained(str(folder), torch_dtype=dtype, attn_implementation=attn)


def save_model(model, folder):
    kwargs = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True
    model.save_pretrained(str(folder), **kwargs)
    if not (folder / "model.safetensors").is_file():
        fail(f"save_pretrained wrote no model.safetensors into {folder}: "
             f"{sorted(p.name for p in folder.iterdir())}")


def lr_at(step, elapsed, args):
    """Linear warmup over steps, then cosine over the wall-clock budget down to lr * min_ratio."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, elapsed / args.seconds)
    ratio = args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return args.lr * ratio


def top_gap(logits):
    top2 = torch.topk(logits, 2).values
    return float(top2[0] - top2[1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=".gpu/corpus/kjv.txt")
    p.add_argument("--out", required=True, help="model folder (HF format, 7 files)")
    p.add_argument("--aux", required=True, help="folder for tokenizer-check.json, sample.json")
    p.add_argument("--seconds", type=float, default=240.0, help="training wall-clock budget")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--intermediate", type=int, default=768)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--max-positions", type=int, default=1024)
    p.add_argument("--seq", type=int, default=512, help="training window (tokens after bos)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--eval-seconds", type=float, default=10.0)
    p.add_argument("--sample-tokens", type=int, default=50)
    args = p.parse_args()

    import transformers
    import tokenizers
    from transformers import LlamaForCausalLM

    log(f"python {sys.version.split()[0]}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}")
    if not torch.cuda.is_available():
        fail("no CUDA device")
    device = torch.device("cuda")
    log(f"device: {torch.cuda.get_device_name(0)}")
    seed_everything(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    out_dir, aux_dir = Path(args.out), Path(args.aux)
    out_dir.mkdir(parents=True, exist_ok=True)
    aux_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        fail(f"{out_dir} is not empty")

    # 1. corpus
    lines = Path(args.corpus).read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if line.strip()]
    n_val = max(1, round(len(lines) * 0.01))
    train_lines, val_lines = lines[:-n_val], lines[-n_val:]
    log(f"corpus {args.corpus}: {len(lines)} lines, {len(train_lines)} train, "
        f"{len(val_lines)} validation (from {val_lines[0][:40]!r})")

    # 2. tokenizer
    t = time.time()
    tok, bos_id = train_tokenizer(train_lines, args.vocab)
    vocab_size = tok.get_vocab_size()
    log(f"tokenizer: byte-level BPE, vocab {vocab_size}, bos/eos {BOS}={bos_id}, "
        f"{time.time() - t:.1f} s")
    train_ids, train_starts = encode_lines(tok, train_lines)
    val_ids, _ = encode_lines(tok, val_lines)
    log(f"tokens: train {len(train_ids)}, validation {len(val_ids)} "
        f"({sum(map(len, train_lines)) / len(train_ids):.2f} chars/token)")
    log(f"'{PROMPT}' -> {tok.encode(PROMPT).tokens}")

    # 3. model
    config = make_config(vocab_size, args, bos_id)
    model = LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())  # tied embedding counted once
    log(f"model: Llama, hidden {args.hidden}, {args.layers} layers, {args.heads} heads / "
        f"{args.kv_heads} KV heads, head_dim {config.head_dim}, MLP {args.intermediate}, "
        f"tied embeddings: {n_params} parameters = {n_params * 2 / 2**20:.2f} MiB in bf16")
    if n_params * 2 > MAX_WEIGHT_BYTES - 64 * 1024:
        fail(f"{n_params} parameters take {n_params * 2} bytes in bf16, over 14 MiB")
    model.to(device)
    model.train()
    log("attention implementation for training: "
        f"{getattr(model.config, '_attn_implementation', 'unknown')}")

    # 4. training
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)

    seq = args.seq
    gpu_ids = train_ids.to(device)
    valid_starts = train_starts[train_starts + seq <= len(train_ids)].to(device)
    offsets = torch.arange(seq, device=device)
    bos_col = torch.full((args.batch, 1), bos_id, dtype=torch.long, device=device)
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)

    val_windows = eval_windows(val_ids, seq, bos_id)
    # A fixed sample of training windows, measured the same way as validation.
    pick = torch.randperm(len(train_starts), generator=torch.Generator().manual_seed(args.seed))
    train_eval = torch.stack([
        torch.cat([torch.tensor([bos_id]), train_ids[s:s + seq]])
        for s in train_starts[pick[:64]].tolist() if s + seq <= len(train_ids)])

    best = {"val": float("inf"), "state": None, "step": 0, "time": 0.0}
    history = []
    step, tokens, ema = 0, 0, None
    t0 = time.time()
    next_eval = args.eval_seconds
    log(f"training for {args.seconds:.0f} s: batch {args.batch} x {seq} tokens, lr {args.lr}, "
        f"warmup {args.warmup} steps, cosine to {args.lr * args.min_lr_ratio:g}")
    while True:
        elapsed = time.time() - t0
        if elapsed >= args.seconds:
            break
        lr = lr_at(step, elapsed, args)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = valid_starts[torch.randint(len(valid_starts), (args.batch,), device=device,
                                         generator=gen)]
        windows = torch.cat([bos_col, gpu_ids[idx[:, None] + offsets]], dim=1)
        x, y = windows[:, :-1], windows[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x.numel()
        if step % 100 == 0:
            value = loss.item()
            ema = value if ema is None else 0.9 * ema + 0.1 * value
            if step % 500 == 0:
                el = time.time() - t0
                log(f"step {step}: loss {value:.4f} (ema {ema:.4f}), lr {lr:.2e}, "
                    f"{tokens / el / 1e3:.0f}k tokens/s, {el:.0f} s")
        if time.time() - t0 >= next_eval:
            next_eval += args.eval_seconds
            torch.cuda.synchronize()
            val = mean_loss(model, val_windows, device, autocast=True)
            el = time.time() - t0
            history.append({"step": step, "seconds": round(el, 1), "val_loss": round(val, 4)})
            mark = ""
            if val < best["val"]:
                best = {"val": val, "step": step, "time": el,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
                mark = " (best)"
            log(f"eval at step {step}, {el:.0f} s: validation loss {val:.4f}{mark}")
    torch.cuda.synchronize()
    train_time = time.time() - t0
    final_val = mean_loss(model, val_windows, device, autocast=True)
    history.append({"step": step, "seconds": round(train_time, 1), "val_loss": round(final_val, 4)})
    log(f"trained {step} steps, {tokens} tokens in {train_time:.1f} s = "
        f"{tokens / train_time / 1e3:.0f}k tokens/s ({tokens / len(train_ids):.1f} epochs)")
    log(f"last weights: validation loss {final_val:.4f}")
    if final_val < best["val"]:
        best = {"val": final_val, "step": step, "time": train_time, "state": None}
    else:
        model.load_state_dict(best["state"])
    log(f"keeping the weights of step {best['step']} ({best['time']:.0f} s): "
        f"validation loss {best['val']:.4f}")
    train_loss = mean_loss(model, train_eval, device, autocast=True)
    log(f"final train loss {train_loss:.4f} (64 fixed training windows), "
        f"validation loss {best['val']:.4f} (perplexity {math.exp(best['val']):.2f})")

    # Greedy sample from the fp32 weights on the GPU, before rounding to bf16.
    model.eval()
    prompt_ids = tok.encode(PROMPT).ids
    with torch.no_grad():
        x = torch.tensor([prompt_ids], device=device)
        gen_out = model.generate(input_ids=x, attention_mask=torch.ones_like(x),
                                 max_new_tokens=args.sample_tokens, do_sample=False,
                                 pad_token_id=bos_id)
    new = gen_out[0, len(prompt_ids):].tolist()
    log(f"greedy sample (fp32 weights, GPU): {PROMPT!r} + {tok.decode(new)!r}")

    # 5. save: bf16 weights, HF format, plus the tokenizer files.
    model.to(torch.bfloat16)
    save_model(model, out_dir)
    write_tokenizer_files(tok, out_dir, args.max_positions)
    files = sorted(out_dir.iterdir())
    for f in files:
        log(f"  {f.name}: {f.stat().st_size} bytes")
    problems = []
    weight_bytes = (out_dir / "model.safetensors").stat().st_size
    if weight_bytes > MAX_WEIGHT_BYTES:
        problems.append(f"model.safetensors has {weight_bytes} bytes, over 14 MiB")
    if len(files) > MAX_OUT_FILES:
        problems.append(f"{out_dir} holds {len(files)} files, more than {MAX_OUT_FILES}")

    # 6. reload and check what was saved.
    check, tok_problems = tokenizer_check(tok, out_dir)
    problems += tok_problems
    (aux_dir / "tokenizer-check.json").write_text(
        json.dumps(check, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    reloaded = load_pretrained(LlamaForCausalLM, out_dir, torch.float32, "eager")
    dtypes = sorted({str(p.dtype) for p in reloaded.parameters()})
    reloaded.to(device)
    val_bf16 = mean_loss(reloaded, val_windows, device, autocast=False)
    log(f"reloaded {out_dir.name} ({dtypes}): validation loss with the bf16 weights in fp32 "
        f"compute {val_bf16:.4f}")

    # Greedy continuation in float64 on the CPU (eager attention): what the C# side must match.
    cpu64 = reloaded.to("cpu").to(torch.float64).eval()
    inv_freq = cpu64.model.rotary_emb.inv_freq
    head_dim = config.head_dim
    expected = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    if (inv_freq.double() - expected).abs().max() / expected.max() > 1e-6:
        problems.append("rotary inv_freq of the reloaded model is not 10000^(-2i/d)")
    with torch.no_grad():
        x = torch.tensor([prompt_ids])
        res = cpu64.generate(input_ids=x, attention_mask=torch.ones_like(x),
                             max_new_tokens=args.sample_tokens, do_sample=False,
                             pad_token_id=bos_id, output_logits=True,
                             return_dict_in_generate=True)
    greedy64 = res.sequences[0, len(prompt_ids):].tolist()
    gaps = [top_gap(step_logits[0]) for step_logits in res.logits]
    text64 = tok.decode(greedy64)
    log(f"greedy sample (bf16 weights, float64 CPU): {PROMPT!r} + {text64!r}")
    log(f"  ids {greedy64}; smallest top-1/top-2 logit gap {min(gaps):.3g}")
    sample = {
        "prompt": PROMPT, "prompt_ids": prompt_ids, "max_new_tokens": args.sample_tokens,
        "greedy_ids_float64": greedy64, "greedy_text_float64": text64,
        "min_top2_gap": min(gaps), "greedy_ids_fp32_gpu_before_bf16": new,
        "validation_loss_best": best["val"], "validation_loss_bf16_weights": val_bf16,
        "train_loss": train_loss, "steps": step, "tokens": tokens,
        "train_seconds": round(train_time, 1), "best_step": best["step"],
        "parameters": n_params, "history": history,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "args": vars(args),
    }
    (aux_dir / "sample.json").write_text(json.dumps(sample, indent=1, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    if problems:
        for prob in problems:
            print(f"[train] CHECK FAILED: {prob}", file=sys.stderr, flush=True)
        sys.exit(1)
    log("done")


if __name__ == "__main__":
    main()
