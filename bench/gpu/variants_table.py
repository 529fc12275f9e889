#!/usr/bin/env python3
"""The variant table against FlexAttention from one `bench/gpu/variants-half.sh` call's CSVs.

Usage: python3 bench/gpu/variants_table.py OURS_CSV FLEX_CSV
  OURS_CSV: `managed bench --variants --dtype ... --out` (dtype column float/half/bfloat16);
  FLEX_CSV: `bench/gpu/torch_flex.py --dtype ...` (dtype column float32/float16/bfloat16).
Prints a markdown table, one row per (variant, dtype, N, D) both sides measured: ms and TFLOP/s
on attended pairs of each, and ours/Flex = Flex ms / our ms (the speed ratio: above 1 is ours
faster), then the lowest ratio per dtype and the rows under 0.5. Exit status 0 either way.
"""
import csv
import sys

# Our canonical names (VariantBench.DefaultSpecs) -> torch_flex.py's names, in table order.
NAMES = {
    "causal": "causal",
    "causal-window-512": "sliding-512",
    "sink4-window512": "sinks4-window512",
    "doc-1000-causal": "document1000-causal",
    "softcap-30-causal": "softcap30-causal",
    "alibi-causal": "alibi-causal",
}
# Both sides' dtype spellings -> one.
DTYPES = {"float": "fp32", "float32": "fp32", "half": "fp16", "float16": "fp16",
          "bfloat16": "bf16"}


def load(path, default_dtype):
    rows = {}
    try:
        for r in csv.DictReader(open(path)):
            dtype = DTYPES[r.get("dtype") or default_dtype]
            rows[(r["variant"], dtype, int(r["seq"]), int(r["dim"]))] = r
    except FileNotFoundError:
        print(f"missing: {path}")
    return rows


ours = load(sys.argv[1], "float")
flex = load(sys.argv[2], "float32")
print("| variant | dtype | N | D | ours ms | ours TFLOP/s | Flex ms | Flex TFLOP/s | ours/Flex |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
ratios = {}
ORDER = ["fp16", "bf16", "fp32"]
keys = sorted(ours, key=lambda k: (ORDER.index(k[1]), k[3], k[2],
                                   list(NAMES).index(k[0]) if k[0] in NAMES else len(NAMES)))
for key in keys:
    name, dtype, n, d = key
    o = ours[key]
    f = flex.get((NAMES.get(name, name), dtype, n, d))
    if f is None:
        print(f"| {name} | {dtype} | {n} | {d} | {float(o['ms']):.3f} | "
              f"{float(o['tflops_attended']):.2f} | - | - | - |")
        continue
    ratio = float(f["ms"]) / float(o["ms"])
    ratios.setdefault(dtype, []).append((ratio, name, n, d))
    print(f"| {name} | {dtype} | {n} | {d} | {float(o['ms']):.3f} | "
          f"{float(o['tflops_attended']):.2f} | {float(f['ms']):.3f} | "
          f"{float(f['tflops_attended']):.2f} | {ratio:.2f} |")
print()
for dtype, rs in sorted(ratios.items(), key=lambda item: ORDER.index(item[0])):
    low = min(rs)
    under = [r for r in rs if r[0] < 0.5]
    print(f"{dtype}: {len(rs)} rows joined, lowest ours/Flex {low[0]:.2f} ({low[1]} N={low[2]} "
          f"D={low[3]}), {len(under)} under 0.5"
          + (": " + ", ".join(f"{r[1]} N={r[2]} D={r[3]} {r[0]:.2f}" for r in sorted(under))
             if under else ""))
