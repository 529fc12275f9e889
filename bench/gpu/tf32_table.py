"""The TF32 prefill's table: for each shape of `managed bench --precision exact,tf32` (argv[1])
and PyTorch SDPA fp32 efficient (argv[2], bench/gpu/torch_sdpa.py), TFLOP/s of ours exact, ours
tf32 and PyTorch, and tf32 over PyTorch and over ours exact."""
import csv
import sys

ours = {}
for r in csv.DictReader(open(sys.argv[1])):
    ours[(r["seq"], r["dim"], r["causal"], r["precision"])] = float(r["tflops"])
torch = {(r["seq"], r["dim"], r["causal"]): float(r["tflops"])
         for r in csv.DictReader(open(sys.argv[2]))}
print(f"{'N':>6} {'D':>4} {'causal':>6} {'exact':>8} {'tf32':>8} {'torch':>8} "
      f"{'tf32/torch':>11} {'tf32/exact':>11}")
for (n, d, causal), t in sorted(torch.items(), key=lambda e: (int(e[0][1]), int(e[0][0]), e[0][2])):
    e, f = ours.get((n, d, causal, "exact")), ours.get((n, d, causal, "tf32"))
    if e is None or f is None:
        continue
    print(f"{n:>6} {d:>4} {causal:>6} {e:8.1f} {f:8.1f} {t:8.1f} {f / t:11.2f} {f / e:11.2f}")
