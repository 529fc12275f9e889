"""Peer measurement on the GPU machine for `managed bench --gemm`: torch.matmul(x, w.t()) in
bf16 (x (m, k), w (n, k) as nn.Linear stores it, fp32 accumulation inside cuBLAS), the shapes
of the managed run. Warm-up, then 5 samples of 20 calls between CUDA events (pipelined, as
ours are timed: 20 calls and one synchronize per sample); the median sample is kept. TFLOP/s
= 2 m n k / time. Writes CSV to argv[1]; argv[2]: shapes MxNxK,...; argv[3]: dtypes
(default bfloat16; half also accepted)."""
import statistics
import sys

import torch

out, shapes = sys.argv[1], [tuple(int(v) for v in s.split("x")) for s in sys.argv[2].split(",")]
dtypes = sys.argv[3].split(",") if len(sys.argv) > 3 else ["bfloat16"]
torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
with open(out, "w") as fh:
    fh.write("m,n,k,dtype,ms,tflops\n")
    for name in dtypes:
        dtype = {"bfloat16": torch.bfloat16, "half": torch.float16}[name]
        for m, n, k in shapes:
            g = torch.Generator(device="cuda").manual_seed(1)
            x = (torch.rand(m, k, device="cuda", generator=g) * 2 - 1).to(dtype)
            w = (torch.rand(n, k, device="cuda", generator=g) * 2 - 1).to(dtype)
            for _ in range(3):
                torch.matmul(x, w.t())
            torch.cuda.synchronize()
            samples = []
            for _ in range(5):
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(20):
                    torch.matmul(x, w.t())
                end.record()
                torch.cuda.synchronize()
                samples.append(start.elapsed_time(end) / 20)
            ms = statistics.median(samples)
            tf = 2.0 * m * n * k / ms / 1e9
            print(f"torch.matmul {name} {m}x{n}x{k}: {ms:.4f} ms {tf:.1f} TFLOP/s", flush=True)
            fh.write(f"{m},{n},{k},{name},{ms:.5f},{tf:.2f}\n")
