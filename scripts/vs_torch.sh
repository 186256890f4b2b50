#!/usr/bin/env bash
# Side by side with PyTorch: alternates nnkern-bench (native) and scripts/torch_bench.py case
# by case (each case of the suite in a file of its own, so that both sides of a comparison
# run seconds apart: the host is shared, and its load comes in bursts that a whole suite's
# run on one side would catch alone), ROUNDS times, and prints per case and pass the median
# of each side's medians (ms) and the ratio nnkern / PyTorch (below 1: nnkern faster), then
# the same from each side's fastest round (min_*). Only figures from the same run compare.
# usage: scripts/vs_torch.sh THREADS ROUNDS SUITE OP...   (PYTHON: a python with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=$1; rounds=$2; suite=$3; shift 3
py=${PYTHON:-/work/torchenv/bin/python}
ops=(); for o in "$@"; do ops+=(--op "$o"); done
cases=$(mktemp -d)
trap 'rm -rf "$cases"' EXIT
python3 - "$suite" "$cases" "$@" <<'PY'
import json, sys
suite, ops = json.load(open(sys.argv[1])), sys.argv[3:]
i = 0
for op, items in suite.items():
    if not isinstance(items, list) or (ops and op not in ops):
        continue
    for case in items:
        json.dump({op: [case]}, open("%s/%03d.json" % (sys.argv[2], i), "w"))
        i += 1
PY
for r in $(seq "$rounds"); do
  for c in "$cases"/*.json; do
    target/release/nnkern-bench --suite "$c" "${ops[@]}" --threads "$threads" --target-s 0.4 2>/dev/null
    "$py" scripts/torch_bench.py --suite "$c" "${ops[@]}" --threads "$threads" --target-s 0.4 2>/dev/null
  done
done | python3 -c '
import json, sys, statistics as st, collections
d = collections.defaultdict(list)
for line in sys.stdin:
    r = json.loads(line); d[(r["op"], r["case"], r["pass"], r["backend"])].append(r["median_ms"])
keys = sorted({k[:3] for k in d})
# Medians of the rounds, and their minima (the host'"'"'s load only ever adds time).
print("%-12s %-16s %-16s %10s %10s %6s %10s %10s %6s %10s" % ("op", "case", "pass", "nnkern", "pytorch", "ratio", "min_nnk", "min_pt", "ratio", "pt_cl"))
for k in keys:
    nn, pt = d.get(k + ("native",), [float("nan")]), d.get(k + ("pytorch",), [float("nan")])
    n, t = st.median(nn), st.median(pt)
    cl = d.get(k + ("pytorch_cl",)); cl = "%10.4f" % st.median(cl) if cl else ""
    print("%-12s %-16s %-16s %10.4f %10.4f %6.2f %10.4f %10.4f %6.2f %s" % (k + (n, t, n / t, min(nn), min(pt), min(nn) / min(pt), cl)))
'
