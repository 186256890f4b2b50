#!/usr/bin/env bash
# Side by side with PyTorch: alternates nnkern-bench (native) and scripts/torch_bench.py over
# the same suite file, ROUNDS times, and prints per case and pass the median of each side's
# medians (ms) and the ratio nnkern / PyTorch (below 1: nnkern faster), then the same from
# each side's fastest round (min_*). The host is shared and
# noisy, so only figures from the same run are compared.
# usage: scripts/vs_torch.sh THREADS ROUNDS SUITE OP...   (PYTHON: a python with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=$1; rounds=$2; suite=$3; shift 3
py=${PYTHON:-/work/torchenv/bin/python}
ops=(); for o in "$@"; do ops+=(--op "$o"); done
for r in $(seq "$rounds"); do
  target/release/nnkern-bench --suite "$suite" "${ops[@]}" --threads "$threads" --target-s 0.4 2>/dev/null
  "$py" scripts/torch_bench.py --suite "$suite" "${ops[@]}" --threads "$threads" --target-s 0.4 2>/dev/null
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
