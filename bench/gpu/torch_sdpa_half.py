"""Peer measurement on the GPU machine for the tensor-core prefill: PyTorch
scaled_dot_product_attention in fp16 and bf16 with its flash backend (FlashAttention-2), the
shapes and FLOP count of `managed bench --dtype half,bfloat16` (4 B H N^2 D, halved for
causal). Mean of 20 timed runs after warm-up, CUDA events. Writes CSV (with a storage column,
as `managed bench --dtype` does) to argv[1]; argv[2]: head dims (default 64,128)."""
import sys
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F

out = open(sys.argv[1], "w")
out.write("batch,heads,seq,dim,causal,ms,tflops,storage\n")
B, H = 1, 16
dims = tuple(int(x) for x in sys.argv[2].split(",")) if len(sys.argv) > 2 else (64, 128)
for name, dtype in (("half", torch.float16), ("bfloat16", torch.bfloat16)):
    for d in dims:
        for n in (1024, 4096, 16384):
            for causal in (False, True):
                g = torch.Generator(device="cuda").manual_seed(1)
                q, k, v = ((torch.rand(B, H, n, d, device="cuda", generator=g) * 2 - 1).to(dtype)
                           for _ in range(3))
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    for _ in range(3):
                        F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                    torch.cuda.synchronize()
                    start = torch.cuda.Event(enable_timing=True)
                    end = torch.cuda.Event(enable_timing=True)
                    runs = 20
                    start.record()
                    for _ in range(runs):
                        F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                    end.record()
                    torch.cuda.synchronize()
                ms = start.elapsed_time(end) / runs
                flops = 4.0 * B * H * n * n * d * (0.5 if causal else 1.0)
                tf = flops / ms / 1e9
                print(f"torch flash {name} B={B} H={H} N={n} D={d} causal={causal}: {ms:.3f} ms "
                      f"{tf:.2f} TFLOP/s", flush=True)
                out.write(f"{B},{H},{n},{d},{causal},{ms:.4f},{tf:.4f},{name}\n")
out.close()
