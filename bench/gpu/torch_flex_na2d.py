"""Peer measurement on the GPU machine: PyTorch FlexAttention (torch.compile'd, block mask from
create_block_mask) in fp32 on NATTEN-style 2-D neighborhood attention, 56 x 56 tokens, kernel
7 x 7 (window start clamp(i - 3, 0, 56 - 7) per axis), D = 64, H = 8, B = 1. TFLOP/s counted on
attended pairs (3136 x 49). Writes one CSV row to argv[1]."""
import sys
import torch
from torch.nn.attention.flex_attention import flex_attention, create_block_mask

torch.backends.cuda.matmul.allow_tf32 = False
B, H, S, K, D = 1, 8, 56, 7, 64
N = S * S

def start(i): return torch.clamp(i - K // 2, 0, S - K)

def na2d(b, h, q, k):
    qr, qc, kr, kc = q // S, q % S, k // S, k % S
    r0, c0 = start(qr), start(qc)
    return (kr >= r0) & (kr < r0 + K) & (kc >= c0) & (kc < c0 + K)

g = torch.Generator(device="cuda").manual_seed(1)
q, k, v = (torch.rand(B, H, N, D, device="cuda", generator=g) * 2 - 1 for _ in range(3))
bm = create_block_mask(na2d, None, None, N, N, device="cuda")
flex = torch.compile(flex_attention)
for _ in range(3):
    flex(q, k, v, block_mask=bm)
torch.cuda.synchronize()
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
runs = 20
s.record()
for _ in range(runs):
    flex(q, k, v, block_mask=bm)
e.record(); torch.cuda.synchronize()
ms = s.elapsed_time(e) / runs
tf = 4.0 * B * H * N * K * K * D / ms / 1e9
print(f"flex na2d-56x56-k7 N={N} D={D}: {ms:.3f} ms {tf:.2f} TFLOP/s", flush=True)
with open(sys.argv[1], "w") as out:
    out.write("variant,heads,seq,dim,ms,tflops_attended\n")
    out.write(f"na2d-56x56-k7,{H},{N},{D},{ms:.4f},{tf:.4f}\n")
