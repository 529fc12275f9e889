"""PyTorch peer of `managed bench --linear` on the GPU: the same chunked algorithm (causal,
normalized, no decay, features elu(x)+1 with F = D, fp32) written with batched matmuls as
Lightning Attention-2 describes it: per chunk the masked quadratic form (Q_c K_c^T * M) V_c,
across chunks the exclusive prefix sum of the chunk states K_c^T V_c (and of the key sums) read
by Q_c. B=1, H=16. Times with CUDA events over 20 calls after warm-up; prints ms and us/token.
Usage: python3 torch_linear.py OUT.csv N1,N2,... D1,D2,... [chunk]"""
import sys, torch

out, seqs, dims = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], [int(x) for x in sys.argv[3].split(",")]
chunk = int(sys.argv[4]) if len(sys.argv) > 4 else 64
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"


def chunked(q, k, v, c):
    b, h, n, f = q.shape
    dv = v.shape[-1]
    m = n // c
    qc, kc, vc = (x.view(b, h, m, c, x.shape[-1]) for x in (q, k, v))
    mask = torch.tril(torch.ones(c, c, device=q.device, dtype=q.dtype))
    a = (qc @ kc.transpose(-1, -2)) * mask                     # (b,h,m,c,c)
    intra = a @ vc                                              # (b,h,m,c,dv)
    intra_den = a.sum(-1)                                       # (b,h,m,c)
    kv = kc.transpose(-1, -2) @ vc                              # (b,h,m,f,dv) chunk states
    state = torch.cumsum(kv, dim=2) - kv                        # exclusive prefix
    ksum = kc.sum(-2)                                           # (b,h,m,f)
    zstate = torch.cumsum(ksum, dim=2) - ksum
    o = intra + qc @ state
    den = intra_den + (qc * zstate.unsqueeze(-2)).sum(-1)
    return (o / den.unsqueeze(-1)).view(b, h, n, dv)


def naive(q, k, v):
    n = q.shape[-2]
    a = (q.double() @ k.double().transpose(-1, -2)) * torch.tril(torch.ones(n, n, device=q.device, dtype=torch.float64))
    return (a @ v.double()) / a.sum(-1, keepdim=True)


rows = []
for d in dims:
    for n in seqs:
        g = torch.Generator(device=dev).manual_seed(1)
        q = torch.nn.functional.elu(torch.rand(1, 16, n, d, device=dev, generator=g) * 2 - 1) + 1
        k = torch.nn.functional.elu(torch.rand(1, 16, n, d, device=dev, generator=g) * 2 - 1) + 1
        v = torch.rand(1, 16, n, d, device=dev, generator=g) * 2 - 1
        if n <= 4096:
            err = (chunked(q, k, v, chunk).double() - naive(q, k, v)).abs().max().item()
        else:
            err = float("nan")
        for _ in range(3):
            chunked(q, k, v, chunk)
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(20):
            chunked(q, k, v, chunk)
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / 20
        rows.append((d, n, chunk, ms, ms * 1000 / n, err))
        print(f"torch chunked fp32 D={d} N={n} chunk={chunk}: {ms:.3f} ms, {ms * 1000 / n:.3f} us/token, max err vs fp64 naive {err:.2e}", flush=True)
with open(out, "w") as fh:
    fh.write("dim,seq,chunk,ms,us_per_token,max_err\n")
    for r in rows:
        fh.write(",".join(str(x) for x in r) + "\n")
