#!/usr/bin/env python3
"""Summary of a log of several `managed check` parts (bench/gpu/check-dtypes.sh,
bench/gpu/variants-half.sh): each part's summary lines and exit status, the first 20 failing
rows or exceptions, and the variant rows summed over the parts per storage type.

Usage: python3 bench/gpu/check_summary.py LOG"""
import re
import sys

summary = re.compile(r"^(variants|prefill-16bit|prefill-fp32|decode)( \(\w+\))?:|rc=")
variants = re.compile(r"variants \((\w+)\): (\d+) checked, (\d+) failed, worst error (\S+)")
lines = open(sys.argv[1], errors="replace").read().splitlines()
for line in lines:
    if summary.search(line):
        print(line)
for line in [x for x in lines if "FAIL" in x or "xception" in x][:20]:
    print(line)
totals = {}
for line in lines:
    m = variants.match(line)
    if m:
        t = totals.setdefault(m[1], [0, 0, 0.0])
        t[0] += int(m[2]); t[1] += int(m[3]); t[2] = max(t[2], float(m[4]))
for dtype, (n, f, worst) in totals.items():
    print(f"all parts: variants ({dtype}): {n} checked, {f} failed, worst error {worst:.2E}")
