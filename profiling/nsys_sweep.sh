#!/usr/bin/env bash
# usage: profiling/nsys_sweep.sh [TRACE_DIR]   (default traces/nsys-sweep; needs CUDA and nsys)
#
# The captures behind reports/h200-nsys: small and 2.7B at ctx 512, forward-only and train-step, bf16
# and fp32 (SDPA), plus the small forward with naive attention in both precisions to split softmax
# from the attention matmuls. All captures share one trace directory, so its kernels.md summarises them.
set -euo pipefail
dir=${1:-traces/nsys-sweep}
for size in small 2.7B; do
  for mode in forward train-step; do
    for precision in bf16 fp32; do
      python3 -m lmbench nsys --annotate detail --size "$size" --ctx 512 --mode "$mode" --precision "$precision" \
        --trace-dir "$dir"
    done
  done
done
for precision in bf16 fp32; do
  python3 -m lmbench nsys --annotate detail --size small --ctx 512 --mode forward --precision "$precision" \
    --attention naive --trace-dir "$dir"
done
echo "summary: $dir/kernels.md" >&2
