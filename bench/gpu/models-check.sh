#!/usr/bin/env bash
# Model parity on a device (default cuda): for each Hugging Face fixture in tests/Fixtures/hf,
# `managed forward` against HF's fp64 logits (max |diff|, and within 1e-4 + 1e-4 |ref|?) and
# `managed generate --greedy` against HF's 32 greedy tokens; then the shipped model's greedy
# continuation against transformers' fp64 one (models/kjv-llama/training/sample.json).
# Usage (repo root, after the self-contained publish into .gpu/app.tgz):
#   bash bench/gpu/models-check.sh [DEVICE]
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" run
APP=${APP:-run/app/managed}   # APP="dotnet src/Cli/bin/Release/net10.0/managed.dll" here
[ "$APP" != run/app/managed ] || [ -x run/app/managed ] || tar xzf .gpu/app.tgz -C run
DEVICE=${1:-cuda}
tmp=$(mktemp -d)
fail=0
# FIXTURES: a space-separated subset of the fixture names (each process compiles its kernels).
for dir in tests/Fixtures/hf/*/; do
  name=$(basename "$dir")
  [ -z "${FIXTURES:-}" ] || [[ " $FIXTURES " == *" $name "* ]] || continue
  $APP forward --model "$dir" --ids "$dir/ids.txt" --out "$tmp/$name.bin" --device "$DEVICE" \
    > "$tmp/$name.log" 2>&1 || { echo "$name: forward failed"; cat "$tmp/$name.log"; fail=1; continue; }
  got=$($APP generate --model "$dir" --ids "$dir/ids.txt" --max-new 32 --greedy \
    --device "$DEVICE" 2>/dev/null)
  python3 - "$dir" "$tmp/$name.bin" "$got" <<'EOF' || fail=1
import sys
from array import array
d, path, got = sys.argv[1], sys.argv[2], sys.argv[3].split()
ref, ours = array("d"), array("f")
ref.frombytes(open(d + "/logits.f64", "rb").read())
ours.frombytes(open(path, "rb").read())
assert len(ref) == len(ours), (len(ref), len(ours))
diff = [abs(a - b) for a, b in zip(ours, ref)]
ok = all(x <= 1e-4 + 1e-4 * abs(r) for x, r in zip(diff, ref))
want = open(d + "/greedy.txt").read().split()
same = got == want
print(f"{d.rstrip('/').split('/')[-1]:22s} logits max |diff| {max(diff):.2e} "
      f"{'within' if ok else 'OUTSIDE'} 1e-4+1e-4|ref|; greedy 32 "
      f"{'identical' if same else 'DIFFERS: ' + ' '.join(got)}")
sys.exit(0 if ok and same else 1)
EOF
done
prompt=$(python3 -c "import json;print(' '.join(map(str,json.load(open('models/kjv-llama/training/sample.json'))['prompt_ids'])))")
echo "$prompt" > "$tmp/prompt.txt"
got=$($APP generate --model models/kjv-llama --ids "$tmp/prompt.txt" --max-new 50 --greedy \
  --device "$DEVICE" 2>/dev/null)
python3 - "$got" <<'EOF' || fail=1
import sys, json
want = json.load(open("models/kjv-llama/training/sample.json"))["greedy_ids_float64"]
got = [int(x) for x in sys.argv[1].split()]
print("kjv-llama greedy 50:", "identical to transformers fp64" if got == want
      else f"DIFFERS at {next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)}")
sys.exit(0 if got == want else 1)
EOF
echo "models-check on $DEVICE: $([ $fail = 0 ] && echo passed || echo FAILED)"
exit $fail
