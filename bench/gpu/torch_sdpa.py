"""Peer measurement on the GPU machine: PyTorch scaled_dot_product_attention in fp32 with its
memory-efficient backend, same shapes, same FLOP count as `managed bench` (4 B H N^2 D, halved
for causal). Mean of timed runs after warm-up, CUDA events. Writes CSV to argv[1]."""
import sys
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
out = open(sys.argv[1], "w")
out.write("batch,heads,seq,dim,causal,ms,tflops\n")
B, H = 1, 16
for d in (64, 128):
    for n in (1024, 4096, 16384):
        for causal in (False, True):
            g = torch.Generator(device="cuda").manual_seed(1)
            q, k, v = (torch.rand(B, H, n, d, device="cuda", generator=g) * 2 - 1 for _ in range(3))
            with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                for _ in range(3):
                    F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                runs = 20
                start.record()
                for _ in range(runs):
                    F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                end.record()
                torch.cuda.synchronize()
            ms = start.elapsed_time(end) / runs
            flops = 4.0 * B * H * n * n * d * (0.5 if causal else 1.0)
            tf = flops / ms / 1e9
            print(f"torch efficient B={B} H={H} N={n} D={d} causal={causal}: {ms:.3f} ms {tf:.2f} TFLOP/s", flush=True)
            out.write(f"{B},{H},{n},{d},{causal},{ms:.4f},{tf:.4f}\n")
out.close()

# Accuracy of the peer itself: fp32 "efficient" output against fp64 math attention, one shape.
n, d = 4096, 64
g = torch.Generator(device="cuda").manual_seed(2)
q, k, v = (torch.rand(1, 16, n, d, device="cuda", generator=g) * 2 - 1 for _ in range(3))
with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
    o32 = F.scaled_dot_product_attention(q, k, v)
with sdpa_kernel(SDPBackend.MATH):
    o64 = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
print(f"torch efficient fp32 max abs error vs fp64 (N={n}, D={d}): {(o32.double() - o64).abs().max().item():.3e}")
