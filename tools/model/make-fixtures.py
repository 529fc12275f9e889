#!/usr/bin/env python3
"""Hugging Face parity fixtures: tiny random models of each family, with HF's float64 outputs.

Runs on the GPU machine's CPU (PyTorch 2.11, transformers 5.x; no network):

    PYTHONUNBUFFERED=1 python3 tools/model/make-fixtures.py --out /tmp/aux/hf

For each fixture NAME it writes two folders, each one an HF model directory:

  NAME/       config.json, generation_config.json, model.safetensors (fp32 weights)
  NAME-bf16/  the same model with its weights rounded to bf16 (model.safetensors in bf16)

and in each folder:

  ids.txt      the 40 input token ids, whitespace-separated
  logits.f64   HF's logits for ids, float64 little-endian, row-major [40, vocab]: the model run
               in float64 (model.to(torch.float64), eager attention) from that folder's weights
  greedy.txt   32 new token ids from generate(do_sample=False) in float64, one line
  meta.json    the family, the seed, the smallest top-1/top-2 logit gaps (greedy steps and
               forward positions), max |fp32 model - fp64 model| logits, observed attention
               windows, versions

The weights are random and larger than HF's init (biases and norm weights random too, so that
each one matters); the seed is the first, from --seed on, whose greedy continuation has a
top-1/top-2 gap above --min-gap at every step, for the fp32 and the bf16 weights.
After saving, each folder is loaded back with from_pretrained and must give the same logits.
"""

import argparse
import copy
import inspect
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

VOCAB = 256
HIDDEN = 64
TOKENS = 40
NEW_TOKENS = 32
MAX_TOTAL_BYTES = 5_000_000


def log(msg):
    print(f"[fixtures {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- configs ---------------------------------------------------------------------------------
# Every config: no bos/eos (nothing stops generation early), no dropout.

def llama(rope, layers=2, heads=4, kv_heads=2, head_dim=None, intermediate=96,
          max_positions=128, tie=False):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        head_dim=head_dim if head_dim is not None else HIDDEN // heads,
        hidden_act="silu", max_position_embeddings=max_positions, rms_norm_eps=1e-5,
        tie_word_embeddings=tie, rope_parameters=rope, attention_bias=False, mlp_bias=False,
        attention_dropout=0.0, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    return LlamaForCausalLM, cfg


def mistral():
    from transformers import MistralConfig, MistralForCausalLM

    cfg = MistralConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=16, hidden_act="silu",
        max_position_embeddings=128, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, sliding_window=8,
        attention_dropout=0.0, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    return MistralForCausalLM, cfg


def qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    # use_sliding_window with max_window_layers=1: layer 0 full, layer 1 sliding (window 8).
    cfg = Qwen2Config(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, hidden_act="silu",
        max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        use_sliding_window=True, sliding_window=8, max_window_layers=1, attention_dropout=0.0,
        bos_token_id=None, eos_token_id=None, pad_token_id=None)
    return Qwen2ForCausalLM, cfg


def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=VOCAB, n_positions=128, n_embd=HIDDEN, n_layer=2, n_head=4, n_inner=128,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, bos_token_id=None, eos_token_id=None)
    return GPT2LMHeadModel, cfg


FIXTURES = {
    # GQA 4/2, head_dim 32 != 64/4, llama3 scaling with all three bands on head_dim 32
    # (wavelengths 6.3 .. 3.6e4 against high/low band edges 8 and 32).
    "llama-gqa": lambda: llama({"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 32}, head_dim=32),
    # The RoPE variants: one layer each.
    "llama-linear": lambda: llama({"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
                                  layers=1, kv_heads=4, intermediate=64),
    # dynamic NTK only acts past max_position_embeddings: 32 < 40 prompt tokens.
    "llama-dynamic": lambda: llama({"rope_type": "dynamic", "rope_theta": 10000.0,
                                    "factor": 2.0}, layers=1, kv_heads=1,
                                   intermediate=64, max_positions=32),
    "llama-yarn": lambda: llama({"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                 "original_max_position_embeddings": 32}, layers=1,
                                intermediate=64, max_positions=128),
    "mistral-window": mistral,
    "qwen2-bias": qwen2,
    "gpt2": gpt2,
}

NOTES = {
    "llama-dynamic": "HF dynamic NTK: inv_freq is recomputed from seq_len = max(position) + 1 "
                     "whenever that passes the largest seq_len seen (and max_position_embeddings); "
                     "the forward over 40 tokens uses seq_len 40 for every position; generate "
                     "rotates the 40 prompt keys with seq_len 40 and each new token with its own "
                     "seq_len (41, 42, ...), leaving cached keys as they were",
    "llama-yarn": "HF YaRN: cos and sin are multiplied by attention_factor = 0.1 ln(factor) + 1",
    "qwen2-bias": "layer_types from use_sliding_window + max_window_layers=1: layer 0 full, "
                  "layer 1 sliding_attention (window 8); tied embeddings, q/k/v bias",
    "mistral-window": "sliding_window 8 on every layer",
}


# --- model making ----------------------------------------------------------------------------


def set_eager(model):
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:
        model.config._attn_implementation = "eager"
    impl = model.config._attn_implementation
    if impl != "eager":
        raise RuntimeError(f"attention implementation is {impl!r}, not eager")


@torch.no_grad()
def randomize(model, gen):
    """Weights ~ N(0, 1/fan_in), embeddings ~ N(0, 1), norm weights ~ 1 + N(0, 0.2²),
    every bias ~ N(0, 0.1²). Each tensor once (tied weights are one Parameter)."""
    seen = set()
    for module in model.modules():
        kind = type(module).__name__
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if name == "bias":
                value = 0.1 * noise
            elif "Norm" in kind:
                value = 1.0 + 0.2 * noise
            elif isinstance(module, nn.Embedding):
                value = noise * (0.5 if p.shape[0] != VOCAB else 1.0)  # positions smaller
            elif kind == "Conv1D":  # GPT-2: weight stored [in, out]
                value = noise / math.sqrt(p.shape[0])
            elif isinstance(module, nn.Linear):
                value = noise / math.sqrt(p.shape[1])
            else:
                raise RuntimeError(f"no init rule for {kind}.{name} {tuple(p.shape)}")
            p.copy_(value.to(p.dtype))


def build(name, seed):
    cls, cfg = FIXTURES[name]()
    torch.manual_seed(seed)
    model = cls(cfg)
    gen = torch.Generator().manual_seed(seed)
    randomize(model, gen)
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
        if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
            raise RuntimeError("tie_word_embeddings is set but the weights are not tied")
    model.eval()
    set_eager(model)
    ids = torch.randint(0, VOCAB, (1, TOKENS), generator=gen)
    return cls, model, ids


def bf16_rounded(model):
    """An fp32 copy whose parameters are rounded to bf16 (buffers such as RoPE's inv_freq stay
    fp32, as from_pretrained computes them)."""
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    return rounded


# --- HF outputs ------------------------------------------------------------------------------


def top_gaps(logits):
    """top-1 minus top-2 per row of [rows, vocab]."""
    top2 = torch.topk(logits, 2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


@torch.no_grad()
def forward_logits(model, ids):
    mask = torch.ones_like(ids)
    logits = model(input_ids=ids, attention_mask=mask).logits[0]
    param_dtype = next(model.parameters()).dtype
    if logits.dtype != param_dtype:
        # Some versions upcast logits to float32; recompute them in the model's dtype.
        hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = model.get_output_embeddings()(hidden)[0]
    return logits


@torch.no_grad()
def greedy(model, ids):
    res = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                         max_new_tokens=NEW_TOKENS, do_sample=False,
                         num_beams=1, pad_token_id=0, eos_token_id=None,
                         output_logits=True, return_dict_in_generate=True)
    new = res.sequences[0, ids.shape[1]:]
    if len(new) != NEW_TOKENS:
        raise RuntimeError(f"generate returned {len(new)} new tokens, not {NEW_TOKENS}")
    step_logits = torch.stack([s[0] for s in res.logits])  # [NEW_TOKENS, vocab]
    return new.tolist(), step_logits


@torch.no_grad()
def greedy_full_recompute(model, ids):
    seq = ids
    for _ in range(NEW_TOKENS):
        # A fresh copy each step: dynamic RoPE keeps state across calls.
        nxt = forward_logits(copy.deepcopy(model), seq)[-1].argmax()
        seq = torch.cat([seq, nxt.view(1, 1)], dim=1)
    return seq[0, ids.shape[1]:].tolist()


@torch.no_grad()
def observed_windows(model, ids):
    """Per layer: the attention window seen in the eager attention weights (None = full causal),
    or a string when the pattern is neither."""
    try:
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
        atts = out.attentions
        if not atts:
            return "no attentions returned"
    except Exception as e:  # only informative
        return f"output_attentions failed: {type(e).__name__}: {e}"
    result = []
    n = ids.shape[1]
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None, :]
    for layer in atts:
        allowed = (layer[0] != 0).any(dim=0)  # [q, k] over heads
        if torch.equal(allowed, k <= q):
            result.append(None)
            continue
        found = "irregular"
        for w in range(1, n + 1):
            if torch.equal(allowed, (k <= q) & (q - k < w)):
                found = w
                break
        result.append(found)
    return result


def evaluate(model64, ids):
    """model64 is never run itself: each use gets a fresh copy (dynamic RoPE keeps state)."""
    logits = forward_logits(copy.deepcopy(model64), ids)
    if logits.dtype != torch.float64:
        raise RuntimeError(f"logits came back as {logits.dtype}, not float64")
    new, step_logits = greedy(copy.deepcopy(model64), ids)
    return {
        "logits": logits,
        "greedy": new,
        "greedy_gap": float(top_gaps(step_logits).min()),
        "forward_gap": float(top_gaps(logits).min()),
        "greedy_matches_full_recompute": greedy_full_recompute(model64, ids) == new,
        "step_logits_match_argmax": step_logits.argmax(-1).tolist() == new,
    }


# --- files -----------------------------------------------------------------------------------


def save(model, folder):
    kwargs = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True
    model.save_pretrained(str(folder), **kwargs)
    if not (folder / "model.safetensors").is_file():
        raise RuntimeError(f"save_pretrained wrote no model.safetensors into {folder}")


def load_back(cls, folder):
    try:
        model = cls.from_pretrained(str(folder), dtype=torch.float64, attn_implementation="eager")
    except TypeError:
        model = cls.from_pretrained(str(folder), torch_dtype=torch.float64,
                                    attn_implementation="eager")
    return model.to(torch.float64).eval()


def write_outputs(folder, ids, result, meta):
    (folder / "ids.txt").write_text(" ".join(map(str, ids[0].tolist())) + "\n")
    logits = result["logits"].contiguous().numpy().astype("<f8")
    logits.tofile(folder / "logits.f64")
    (folder / "greedy.txt").write_text(" ".join(map(str, result["greedy"])) + "\n")
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def make(name, out, args, versions):
    for seed in range(args.seed, args.seed + args.tries):
        cls, model, ids = build(name, seed)
        fp64 = copy.deepcopy(model).to(torch.float64)
        r32 = evaluate(fp64, ids)
        rounded = bf16_rounded(model)
        rb = evaluate(copy.deepcopy(rounded).to(torch.float64), ids)
        if min(r32["greedy_gap"], rb["greedy_gap"]) > args.min_gap:
            break
        log(f"{name}: seed {seed} rejected (greedy gaps {r32['greedy_gap']:.2e} fp32 weights, "
            f"{rb['greedy_gap']:.2e} bf16 weights)")
    else:
        raise RuntimeError(f"{name}: no seed in {args.tries} tries has greedy gaps > "
                           f"{args.min_gap}")

    # The fp32 floor: the same fp32 weights run in float32 (eager, CPU) against float64.
    floor32 = float((forward_logits(model, ids).double() - r32["logits"]).abs().max())
    floor_b = float((forward_logits(rounded, ids).double() - rb["logits"]).abs().max())
    windows = observed_windows(copy.deepcopy(fp64), ids)
    n_params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    log(f"{name}: seed {seed}, {type(model).__name__}, {n_params} parameters, "
        f"greedy gaps {r32['greedy_gap']:.3g} (bf16 {rb['greedy_gap']:.3g}), "
        f"forward gaps {r32['forward_gap']:.3g} (bf16 {rb['forward_gap']:.3g})")
    log(f"{name}: max |fp32 - fp64| logits {floor32:.3g} (bf16 weights: {floor_b:.3g}), "
        f"|logits| max {float(r32['logits'].abs().max()):.3g}, windows per layer {windows}")
    for tag, r in (("fp32", r32), ("bf16", rb)):
        if not r["greedy_matches_full_recompute"]:
            log(f"{name} ({tag} weights): NOTE generate (KV cache) differs from greedy by full "
                f"recompute")
        if not r["step_logits_match_argmax"]:
            raise RuntimeError(f"{name}: generate's logits disagree with its tokens")

    results = []
    for suffix, weights_model, r, floor in (("", model, r32, floor32),
                                            ("-bf16", None, rb, floor_b)):
        folder = out / (name + suffix)
        folder.mkdir(parents=True)
        if weights_model is None:  # bf16 storage of the rounded weights
            weights_model = copy.deepcopy(rounded)
            for p in weights_model.parameters():
                p.data = p.data.to(torch.bfloat16)
        save(weights_model, folder)
        # Loading the folder back must give the same float64 logits.
        back = load_back(cls, folder)
        back_logits = forward_logits(back, ids)
        diff = float((back_logits - r["logits"]).abs().max())
        if diff > 1e-12:
            raise RuntimeError(f"{folder.name}: from_pretrained gives logits {diff:.3g} away")
        stored = sorted({str(p.dtype) for p in weights_model.parameters()})
        meta = {
            "name": name + suffix,
            "model_class": type(model).__name__,
            "model_type": cfg.model_type,
            "weights": "bf16" if suffix else "fp32",
            "stored_dtypes": stored,
            "seed": seed,
            "tokens": TOKENS,
            "vocab": VOCAB,
            "new_tokens": NEW_TOKENS,
            "parameters": n_params,
            "min_greedy_top2_gap": r["greedy_gap"],
            "min_forward_top2_gap": r["forward_gap"],
            "max_abs_logits": float(r["logits"].abs().max()),
            "max_abs_diff_fp32_vs_fp64_logits": floor,
            "greedy_matches_full_recompute": r["greedy_matches_full_recompute"],
            "observed_attention_window_per_layer": windows,
            "window_rule": "key k is visible to query q when k <= q and q - k < window",
            "reload_max_abs_diff": diff,
            "reference": "HF transformers eager, model.to(torch.float64); HF itself computes "
                         "RoPE cos/sin, RMSNorm and the eager softmax of the RoPE families "
                         "in float32 before casting back",
            "note": NOTES.get(name, ""),
            "versions": versions,
        }
        write_outputs(folder, ids, r, meta)
        results.append(folder)
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tries", type=int, default=50)
    p.add_argument("--min-gap", type=float, default=1e-3)
    p.add_argument("--only", nargs="*", default=None, help="fixture names (default: all)")
    args = p.parse_args()

    import numpy
    import transformers

    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "numpy": numpy.__version__}
    log(f"python {sys.version.split()[0]}, {versions}")
    torch.set_num_threads(min(8, torch.get_num_threads()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"{out} is not empty")

    names = args.only or list(FIXTURES)
    failed = []
    for name in names:
        t = time.time()
        try:
            make(name, out, args, versions)
            log(f"{name}: done in {time.time() - t:.1f} s")
        except Exception as e:
            import traceback

            traceback.print_exc()
            log(f"{name}: FAILED: {type(e).__name__}: {e}")
            failed.append(name)

    total = 0
    for f in sorted(out.rglob("*")):
        if f.is_file():
            total += f.stat().st_size
            log(f"  {f.relative_to(out)}: {f.stat().st_size} bytes")
    log(f"total {total} bytes in {out}")
    if total > MAX_TOTAL_BYTES:
        log(f"FAILED: fixtures take {total} bytes, over {MAX_TOTAL_BYTES}")
        failed.append("size")
    if failed:
        log(f"FAILED: {failed}")
        sys.exit(1)
    log("all fixtures written")


if __name__ == "__main__":
    main()
