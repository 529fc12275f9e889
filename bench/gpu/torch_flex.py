"""Peer measurement on the GPU machine: PyTorch FlexAttention (torch.compile'd, block masks
from create_block_mask) on the variants of `managed bench --variants`, B=1, H=16, N 4096 and
16384, in fp32 (the default) or fp16/bf16 (--dtype). TFLOP/s counted on attended pairs only
(4 H pairs D). Writes CSV rows, with a dtype column, to OUT as it goes.

Usage: torch_flex.py OUT [DEADLINE_S] [DIMS] [--dtype float32,float16,bfloat16] [--only NAMES]
                     [--seq N1,N2]
  DEADLINE_S: stop (exit 0) once this many seconds have passed; DIMS: head dims (64,128);
  --only: the variants named (comma-separated, e.g. sinks4-window512); --seq: the lengths.
  With several dtypes, each (variant, shape) runs in every dtype before the next, so a run cut
  by the deadline still has every dtype of the rows it reached."""
import argparse
import time
import torch
import torch._dynamo
from torch.nn.attention.flex_attention import flex_attention, create_block_mask

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("out")
args.add_argument("deadline", nargs="?", type=float, default=float("inf"))
args.add_argument("dims", nargs="?", default="64,128")
args.add_argument("--dtype", default="float32",
                  help="comma-separated: " + ", ".join(DTYPES))
args.add_argument("--only", default=None, help="comma-separated variant names")
args.add_argument("--seq", default="4096,16384", help="comma-separated sequence lengths")
args = args.parse_args()
dtypes = args.dtype.split(",")
for name in dtypes:
    if name not in DTYPES:
        raise SystemExit(f"--dtype {args.dtype!r}: {name!r} is not one of {', '.join(DTYPES)}")

torch._dynamo.config.cache_size_limit = 1000
if hasattr(torch._dynamo.config, "recompile_limit"):
    torch._dynamo.config.recompile_limit = 1000
torch.backends.cuda.matmul.allow_tf32 = False
B, H = 1, 16
slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / H) for h in range(H)], device="cuda")

def causal(b, h, q, k): return q >= k
def sliding(b, h, q, k): return (q >= k) & (q - k < 512)
def sinks(b, h, q, k): return (q >= k) & ((k < 4) | (q - k < 512))
def document(b, h, q, k): return (q >= k) & (q // 1000 == k // 1000)
def softcap(score, b, h, q, k): return 30.0 * torch.tanh(score / 30.0)
def alibi(score, b, h, q, k): return score + slopes[h] * (k - q)

variants = [("causal", causal, None), ("sliding-512", sliding, None), ("sinks4-window512", sinks, None),
            ("document1000-causal", document, None), ("softcap30-causal", causal, softcap),
            ("alibi-causal", causal, alibi)]
if args.only:
    names = args.only.split(",")
    unknown = [x for x in names if x not in {v[0] for v in variants}]
    if unknown:
        raise SystemExit(f"--only: {unknown} not among {[v[0] for v in variants]}")
    variants = [v for v in variants if v[0] in names]
out = open(args.out, "w")
out.write("variant,heads,seq,dim,ms,tflops_attended,dtype\n")
deadline = time.time() + args.deadline
dims = tuple(int(x) for x in args.dims.split(","))
for d in dims:
    for n in (int(x) for x in args.seq.split(",")):
        # The same values in every dtype: drawn in fp32, then rounded.
        g = torch.Generator(device="cuda").manual_seed(1)
        q32, k32, v32 = (torch.rand(B, H, n, d, device="cuda", generator=g) * 2 - 1
                         for _ in range(3))
        qi = torch.arange(n, device="cuda")
        for name, mask_mod, score_mod in variants:
            bm = create_block_mask(mask_mod, None, None, n, n, device="cuda")
            pairs = sum(int(mask_mod(0, 0, qi[i:i + 1024, None], qi[None, :]).sum())
                        for i in range(0, n, 1024))
            for dtype in dtypes:
                if time.time() > deadline:
                    print("deadline reached", flush=True); raise SystemExit(0)
                q, k, v = (x.to(DTYPES[dtype]) for x in (q32, k32, v32))
                # A fresh compiled function per (variant, shape, dtype): dynamo's recompile
                # limit would otherwise send later variants silently to the unfused fallback
                # (seen: 0.4 TFLOP/s).
                torch._dynamo.reset()
                flex = torch.compile(flex_attention)
                for _ in range(3):
                    flex(q, k, v, score_mod=score_mod, block_mask=bm)
                torch.cuda.synchronize()
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                runs = 10
                s.record()
                for _ in range(runs):
                    flex(q, k, v, score_mod=score_mod, block_mask=bm)
                e.record(); torch.cuda.synchronize()
                ms = s.elapsed_time(e) / runs
                tf = 4.0 * B * H * pairs * d / ms / 1e9
                print(f"flex {name} {dtype} N={n} D={d}: {ms:.3f} ms {tf:.2f} TFLOP/s", flush=True)
                out.write(f"{name},{H},{n},{d},{ms:.4f},{tf:.4f},{dtype}\n"); out.flush()
