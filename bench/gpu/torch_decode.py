"""Peer measurement on the GPU machine: PyTorch scaled_dot_product_attention for decode (a few
query rows over a long KV cache, enable_gqa), fp32 and fp16, the shapes of `managed bench
--decode`; GB/s counts the K and V bytes read once. Also the device-to-device copy bandwidth
(bytes read + written). Mean of timed runs after warm-up, CUDA events. Args: CSV path, then
optional comma lists: batches, rows, keys (defaults 1,8 / 1,4 / 8192,32768,131072)."""
import sys
import torch
import torch.nn.functional as F

out = open(sys.argv[1], "w")
lists = [[int(x) for x in a.split(",")] for a in sys.argv[2:5]]
batches, rows_list, keys_list = (lists + [[1, 8], [1, 4], [8192, 32768, 131072]][len(lists):])[:3]
hq, hkv, d = 32, 8, 128

def timed(fn, runs=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(runs):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / runs

a = torch.empty(1 << 28, device="cuda")
b = torch.empty_like(a)
copy_ms = timed(lambda: b.copy_(a))
copy = 2 * a.numel() * 4 / (copy_ms * 1e6)
del a, b
print(f"copy bandwidth {copy:.1f} GB/s", flush=True)
out.write("dtype,batch,rows,keys,ms,gbps,share\n")
for dtype in (torch.float32, torch.float16):
    for bsz in batches:
        for n in keys_list:
            g = torch.Generator(device="cuda").manual_seed(1)
            k = torch.rand(bsz, hkv, n, d, device="cuda", generator=g).to(dtype)
            v = torch.rand(bsz, hkv, n, d, device="cuda", generator=g).to(dtype)
            for r in rows_list:
                q = torch.rand(bsz, hq, r, d, device="cuda", generator=g).to(dtype)
                # bottom-right causal for r > 1 rows: the last r positions of n keys
                mask = None
                if r > 1:
                    i = torch.arange(r, device="cuda")[:, None] + (n - r)
                    mask = torch.arange(n, device="cuda")[None, :] <= i
                ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                                  enable_gqa=True))
                gbps = 2 * bsz * hkv * n * d * k.element_size() / (ms * 1e6)
                name = str(dtype).replace("torch.", "")
                print(f"sdpa {name} B={bsz} rows={r} keys={n}: {ms:.4f} ms {gbps:.1f} GB/s "
                      f"({gbps / copy:.1%} of copy)", flush=True)
                out.write(f"{name},{bsz},{r},{n},{ms:.5f},{gbps:.2f},{gbps / copy:.4f}\n")
out.close()
