#!/usr/bin/env bash
# usage: profiling/ncu.sh [--phase forward|backward|optimizer] [--kernels N] [--set basic|full] [lmbench bench options]
#
# Nsight Compute on the kernels of one phase of the first measured step: lmbench opens the CUDA
# profiler range at the measured steps (so warm-up is never profiled: --profile-from-start off) and
# names its phases with NVTX ranges in the `lmbench` domain, which ncu filters on. Clocks are left as
# the GPU runs them (--clock-control none), so durations match lmbench's and nsys's timings.
# Backward kernels are launched by autograd's worker thread, which carries no lmbench range, so the
# backward recipe keeps everything the step launches outside the forward and optimizer ranges.
# Writes traces/ncu/<phase>-<timestamp>.ncu-rep and prints per-kernel duration and throughput (CSV).
set -euo pipefail
phase=forward kernels=20 set=basic
while [[ $# -gt 0 ]]; do
  case "$1" in
    --phase) phase=$2; shift 2 ;;
    --kernels) kernels=$2; shift 2 ;;
    --set) set=$2; shift 2 ;;
    *) break ;;
  esac
done
ncu=${LMBENCH_NCU:-ncu}
command -v "$ncu" >/dev/null || { echo "profiling/ncu.sh: ncu not found (set LMBENCH_NCU or PATH)" >&2; exit 2; }
case "$phase" in
  forward|optimizer) filter=(--nvtx-include "lmbench@measured_0/$phase/") ;;
  backward) filter=(--nvtx-exclude "lmbench@measured_0/forward/" --nvtx-exclude "lmbench@measured_0/optimizer/") ;;
  *) echo "profiling/ncu.sh: --phase must be forward, backward or optimizer, not '$phase'" >&2; exit 2 ;;
esac
out=traces/ncu/$phase-$(date +%Y%m%d-%H%M%S)
mkdir -p traces/ncu
"$ncu" --clock-control none --profile-from-start off --nvtx "${filter[@]}" --launch-count "$kernels" \
  --set "$set" --export "$out" --force-overwrite \
  python3 -m lmbench bench --annotate phases --steps 1 --run-dir "$out.run" "$@" >&2
"$ncu" --import "$out.ncu-rep" --csv --page raw --metrics \
  gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed
echo "ncu report: $out.ncu-rep (open in Nsight Compute); lmbench timings: $out.run/report.md" >&2
