#!/usr/bin/env python3
"""The bench/RESULTS.md decode table from one `bench/gpu/decode.sh` call's CSVs.

Usage: python3 bench/gpu/decode_table.py OUT_DIR   (reads decode-b1.csv, decode-b8.csv and
torch-decode.csv there; prints markdown). fp16 and bf16 caches are set against SDPA fp16, fp32
against SDPA fp32; the kernel column follows DecodeAttention's dispatch at 32/8 heads, D = 128.
"""
import csv
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "."
ours = {}
for batch in (1, 8):
    path = os.path.join(out, f"decode-b{batch}.csv")
    if not os.path.exists(path):
        continue
    for r in csv.DictReader(open(path)):
        key = (r["storage"], int(r["batch"]), int(r["rows"]), int(r["keys"]))
        ours.setdefault(key, {})[r["layout"]] = r
peer = {}
for r in csv.DictReader(open(os.path.join(out, "torch-decode.csv"))):
    dtype = {"float32": "fp32", "float16": "fp16"}.get(r["dtype"], r["dtype"])
    peer[(dtype, int(r["batch"]), int(r["rows"]), int(r["keys"]))] = float(r["gbps"])


def kernel(storage, rows, group=4):
    if storage == "float":
        return "CUDA cores"
    return "tensor cores, key rows" if rows * group <= 8 else "tensor cores, vector rows"


print("| storage | B | rows | keys | kernel | splits | contiguous GB/s (share) | paged-16 GB/s "
      "| paged / contiguous | SDPA GB/s (peer dtype) | contiguous / SDPA |")
print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
for storage in ("float", "half", "bfloat16"):
    for batch in (1, 8):
        for keys in (8192, 32768, 131072):
            for rows in (1, 4):
                row = ours.get((storage, batch, rows, keys))
                if not row or "contiguous" not in row:
                    continue
                c = row["contiguous"]
                g = float(c["gbps"])
                paged = row.get("paged-16")
                p = float(paged["gbps"]) if paged else None
                dtype = "fp32" if storage == "float" else "fp16"
                s = peer.get((dtype, batch, rows, keys))
                cells = [storage, str(batch), str(rows), f"{keys // 1024}k",
                         kernel(storage, rows), c["splits"],
                         f"{g:.0f} ({float(c['share']) * 100:.1f} %)"]
                cells += [f"{p:.0f}", f"{p / g:.2f}"] if p else ["-", "-"]
                cells += [f"{s:.0f} ({dtype})", f"{g / s:.2f}"] if s else ["-", "-"]
                print("| " + " | ".join(cells) + " |")
