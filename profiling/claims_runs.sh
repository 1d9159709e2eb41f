#!/usr/bin/env bash
# usage: profiling/claims_runs.sh OUT_DIR [seed|tests|calibrate ...]   (CUDA; the H200 runs behind issue 10)
#   seed       the seed sweep's bf16 groups (5 sizes, ctx 512, forward-backward then train-step), each
#              configuration in 3 fresh processes                               -> OUT_DIR/seed-bf16-r3
#   tests      the CUDA tests of repeats, numerics and graphs                  -> OUT_DIR/pytest-cuda.log
#   calibrate  the gate calibration's pools, filled round-robin for CALIBRATE_BUDGET_S seconds (default 240)
#              (resumable: carry the pools back in and it goes on)           -> OUT_DIR/pool
set -euo pipefail
out=${1:?usage: profiling/claims_runs.sh OUT_DIR [parts...]}
shift
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(seed tests calibrate)
for part in "${parts[@]}"; do
  case "$part" in
    seed) for mode in forward-backward train-step; do
            python3 -m lmbench sweep --size small,medium,large,xl,2.7B --ctx 512 --batch 4 --precision bf16 \
              --mode "$mode" --repeats 3 --resume --run-dir "$out/seed-bf16-r3" > /dev/null \
              || echo "seed sweep ($mode) failed; its finished configurations are kept" >&2
          done ;;
    tests) python3 -m pytest -q tests/test_repeats.py tests/test_cuda_graph.py 2>&1 | tail -15 | tee "$out/pytest-cuda.log" ;;
    calibrate) python3 benchmarks/gate_calibration.py measure "$out/pool" --processes 20 \
                 --budget-s "${CALIBRATE_BUDGET_S:-240}" ;;
    *) echo "unknown part '$part' (seed, tests, calibrate)" >&2; exit 2 ;;
  esac
done
