#!/usr/bin/env bash
# Re-render every committed report from its stored results with the current code (no measuring):
# timing reports (`lmbench report`), warm-up studies, comparisons and the gate calibration. Run from the project root: bash reports/rerender.sh
set -euo pipefail
cd "$(dirname "$0")/.."
lm() { python -m lmbench "$@" > /dev/null; }
for run in cpu-small h200-oom h200-memory h200-seed h200-seed-bf16-r3 h200-findings/sweep h200-findings/graph \
           h200-findings/attention h200-findings/warmup/small-bf16 h200-findings/warmup/small-fp32 \
           h200-findings/warmup/xl-bf16 h200-profile h200-target-ci; do
  lm report "reports/$run" 2> /dev/null
done
# The kernel reports (h200-nsys/*/kernels.md, h200-profile/*/kernels.md) are not re-rendered here: their raw
# captures (`nsys stats` CSVs, torch.profiler traces) are too large to commit. `lmbench kernels CAPTURE_DIR`
# re-renders one where the capture exists.
for study in small-bf16 small-fp32 xl-bf16; do
  python - "reports/h200-findings/warmup/$study" <<'PY'
import sys
from pathlib import Path

from lmbench.config import BenchConfig
from lmbench.results import ResultsStore
from lmbench.warmup import write_study

run = Path(sys.argv[1])
write_study(run, BenchConfig.from_dict(ResultsStore(run).records()[-1]["config"]))
PY
done
lm compare reports/h200-seed:precision=fp32 reports/h200-seed:precision=bf16 --out reports/h200-compare/seed-fp32-vs-bf16.md
lm compare reports/h200-nsys:attention=sdpa reports/h200-nsys:attention=naive --out reports/h200-compare/nsys-sdpa-vs-naive.md
lm compare reports/h200-findings/sweep:precision=fp32 reports/h200-findings/sweep:precision=bf16 \
  --out reports/h200-findings/compare-fp32-vs-bf16.md
lm compare reports/h200-findings/attention:attention=sdpa reports/h200-findings/attention:attention=naive \
  --out reports/h200-findings/compare-sdpa-vs-naive.md
python benchmarks/gate_calibration.py analyse reports/h200-calibration/pool --out reports/h200-calibration \
  > reports/h200-calibration/calibration.txt
