"""Peer measurement on the GPU machine: PyTorch FlexAttention (torch.compile'd, block masks
from create_block_mask) in fp32 on the variants of `managed bench --variants`, B=1, H=16.
TFLOP/s counted on attended pairs only (4 H pairs D). Writes CSV rows to argv[1] as it goes; argv[2]: a deadline in seconds; argv[3]: head dims (64,128)."""
import sys, time
import torch
import torch._dynamo
from torch.nn.attention.flex_attention import flex_attention, create_block_mask

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
out = open(sys.argv[1], "w")
out.write("variant,heads,seq,dim,ms,tflops_attended\n")
deadline = time.time() + float(sys.argv[2]) if len(sys.argv) > 2 else float("inf")
dims = tuple(int(x) for x in sys.argv[3].split(",")) if len(sys.argv) > 3 else (64, 128)
for d in dims:
    for n in (4096, 16384):
        g = torch.Generator(device="cuda").manual_seed(1)
        q, k, v = (torch.rand(B, H, n, d, device="cuda", generator=g) * 2 - 1 for _ in range(3))
        for name, mask_mod, score_mod in variants:
            if time.time() > deadline:
                print("deadline reached", flush=True); sys.exit(0)
            # A fresh compiled function per (variant, shape): dynamo's recompile limit would
            # otherwise send later variants silently to the unfused fallback (seen: 0.4 TFLOP/s).
            torch._dynamo.reset()
            flex = torch.compile(flex_attention)
            bm = create_block_mask(mask_mod, None, None, n, n, device="cuda")
            qi = torch.arange(n, device="cuda")
            pairs = sum(int(mask_mod(0, 0, qi[i:i + 1024, None], qi[None, :]).sum()) for i in range(0, n, 1024))
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
            print(f"flex {name} N={n} D={d}: {ms:.3f} ms {tf:.2f} TFLOP/s", flush=True)
            out.write(f"{name},{H},{n},{d},{ms:.4f},{tf:.4f}\n"); out.flush()
