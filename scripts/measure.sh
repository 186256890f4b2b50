#!/usr/bin/env bash
# The side-by-side tables of the closing notes: GEMM native vs OpenBLAS (1 and 2 threads), every
# conv2d case of the suite and of scripts/extra_shapes.json at 2 threads on both backends, the
# eltwise cases with a copy baseline, pooling, softmax-xent and the training steps at 1 and 2
# threads, the extra GEMM shapes, and (when a python with torch is at hand) PyTorch side by
# side. Needs `cargo build --release --features openblas`. Writes to ${OUT:-/tmp/meas}.
# Run it on a quiet machine: 2-thread figures fall to 1-thread speed when another process holds
# a core (rayon's idle worker sleeps and must be woken).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/meas}"
mkdir -p "$out"
b=target/release/nnkern-bench
s=../shared/bench/suite.json
python3 - "$s" "$out/elt.json" <<'P'
import json, sys
s = json.load(open(sys.argv[1]))
copy = [{"name": "copy_16m", "op": "copy", "len": 1 << 24}, {"name": "copy_64k", "op": "copy", "len": 1 << 16}]
json.dump({"eltwise": copy + s["eltwise"]}, open(sys.argv[2], "w"))
P
uptime >"$out/load.txt"
scripts/compare.sh 1 3 gemm >"$out/gemm1.txt"
scripts/compare.sh 2 3 gemm >"$out/gemm2.txt"
for suite in "$s" scripts/extra_shapes.json; do
    for be in native openblas; do $b --suite "$suite" --op conv2d --backend $be --threads 2 --target-s 0.5; done
done >"$out/conv.jsonl"
for t in 1 2; do $b --suite "$out/elt.json" --op eltwise --threads $t --target-s 0.5; done >"$out/elt.jsonl"
for t in 1 2; do $b --suite "$s" --op pool2d --op softmax_xent --op train_step --threads $t --target-s 0.5; done >"$out/rest.jsonl"
SUITE=scripts/gemm_shapes.json scripts/compare.sh 1 3 gemm >"$out/gemm_shapes1.txt"
# Side by side with PyTorch (needs a python with torch: PYTHON=..., see scripts/vs_torch.sh).
if "${PYTHON:-/work/torchenv/bin/python}" -c "import torch" 2>/dev/null; then
    scripts/vs_torch.sh 2 3 "$s" conv2d >"$out/torch_conv.txt"
    scripts/vs_torch.sh 2 3 scripts/extra_shapes.json conv2d >"$out/torch_conv_extra.txt"
    for t in 1 2; do scripts/vs_torch.sh $t 3 "$s" eltwise pool2d softmax_xent; done >"$out/torch_rest.txt"
fi
uptime >>"$out/load.txt"
