#!/usr/bin/env bash
# Side-by-side native vs OpenBLAS for the suite's gemm cases, alternating backends several
# times (the machine is shared and noisy), printing the median GFLOP/s of each.
# usage: [SUITE=file] scripts/compare.sh THREADS ROUNDS [OP] [case...]
set -euo pipefail
threads=${1:-1}; rounds=${2:-3}; op=${3:-gemm}; shift 3 || true
bin=target/release/nnkern-bench
suite=${SUITE:-../shared/bench/suite.json}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=($(python3 -c "import json;print(' '.join(c['name'] for c in json.load(open('$suite'))['$op']))"))
for c in "${cases[@]}"; do
  for r in $(seq "$rounds"); do
    for be in native openblas; do
      $bin --suite "$suite" --op "$op" --case "$c" --backend $be --threads "$threads" --target-s 0.3
    done
  done
done | python3 -c '
import json, sys, statistics as st, collections
d = collections.defaultdict(list)
for line in sys.stdin:
    r = json.loads(line); d[(r["case"], r["pass"], r["backend"])].append((r["gflops"] or r["gbps"], r["median_ms"]))
keys = sorted({(c, p) for c, p, _ in d}, key=lambda x: x)
print("%-18s %-16s %9s %9s %6s %9s %9s %6s  (median, then best over rounds)" % ("case", "pass", "native", "openblas", "ratio", "best_nat", "best_obl", "ratio"))
for c, p in keys:
    n = st.median(x for x, _ in d[(c, p, "native")]); o = st.median(x for x, _ in d.get((c, p, "openblas"), [(float("nan"), 0)]))
    nm = st.median(y for _, y in d[(c, p, "native")]); om = st.median(y for _, y in d.get((c, p, "openblas"), [(0, float("nan"))]))
    bn = max(x for x, _ in d[(c, p, "native")]); bo = max(x for x, _ in d.get((c, p, "openblas"), [(float("nan"), 0)]))
    print(f"{c:18} {p:16} {n:9.1f} {o:9.1f} {n/o:6.2f} {bn:9.1f} {bo:9.1f} {bn/bo:6.2f}")
'
