#!/usr/bin/env bash
# usage: profiling/nsys.sh [lmbench bench options]   e.g. profiling/nsys.sh --size small --ctx 512 --mode train-step --precision bf16
#
# Nsight Systems capture of the measured steps only, with per-layer ranges, then the kernel report:
# `lmbench nsys` builds and runs the nsys command (cuda, nvtx, osrt, cublas traces; capture range
# cudaProfilerApi; Python backtraces) and `nsys stats`, and writes traces/<run>/<capture>/kernels.md.
# Extra arguments go to lmbench (e.g. --attention naive to split softmax from the attention matmuls,
# --emit-nvtx for a range per autograd op, --trace-dir DIR to add captures to one run's summary).
# nsys is taken from $LMBENCH_NSYS or PATH; without it lmbench prints the commands to run elsewhere.
set -euo pipefail
exec python3 -m lmbench nsys --annotate detail "$@"
