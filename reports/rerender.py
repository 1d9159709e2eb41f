"""Re-render every committed report from its stored results with the current code (no measuring): timing
reports (`lmbench report`, which also renders a warm-up study's warmup.md), comparisons and, unless
--no-calibration, the gate calibration. tests/test_committed_reports.py runs the same list and requires every
file to come out byte-identical.

Kernel reports are re-rendered (`lmbench kernels`) where their raw capture is committed (KERNEL_CAPTURES: an Nsight
Compute raw page, a 156 KB torch.profiler trace), before the run directory's report that sums them; run summaries
across captures (RUN_SUMMARIES) from the captures' committed kernel tables. The others
(h200-nsys/*/kernels.md, h200-profile/*/kernels.md) are not: their captures (`nsys stats` CSVs, traces) are too
large to commit. `lmbench kernels CAPTURE_DIR` re-renders one where the capture exists.

usage (from the project root): python reports/rerender.py [--no-calibration]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import runpy
import sys
from pathlib import Path

from lmbench.cli import main as lmbench
from lmbench.kernels.report import write_run_summary

RUNS = ("cpu-small", "h200-oom", "h200-memory", "h200-seed", "h200-seed-bf16-r3", "h200-findings/sweep",
        "h200-findings/graph", "h200-findings/attention", "h200-findings/warmup/small-bf16",
        "h200-findings/warmup/small-fp32", "h200-findings/warmup/xl-bf16", "h200-profile", "h200-target-ci",
        "h200-ddp-one-gpu", "h200-ddp-one-gpu/nsys-ddp1", "h200-issue14/attention-fp32", "h200-issue14/attention-bf16",
        "h200-issue14/custom-model", "h200-issue14/ncu-2.7B", "h200-issue14/five-sizes", "h200-issue14/sdpa",
        "h200-issue14/flash-trace", "h200-pair/ddp", "h200-pair/fsdp", "h200-pair/collectives", "h200-pair/profile-2.7B",
        "h200-pair/comm-ddp/profile", "h200-pair/comm-ddp/nsys", "h200-pair/comm-fsdp/profile", "h200-pair/comm-fsdp/nsys",
        "h200-pair/repeats-one-gpu", "h200-issue14/explain-2.7B", "h200-pair/decompose",
        "h200-pair/ddp-repeats", "h200-pair/ddp-interleaved", "h200-issue14/param-dtype", "h200-issue14/param-train",
        "h200-issue14/optimizers-2.7B", "h200-issue14/optimizers")
# Run summaries across captures (kernels.md beside the captures) re-rendered from the captures' committed kernel
# tables, where the captures' own reports cannot be (their raw `nsys stats` CSVs are not committed).
RUN_SUMMARIES = ("h200-pair/decompose",)
KERNEL_CAPTURES = ("h200-issue14/ncu-2.7B/2.7B-forward-bf16-sdpa-b4-ctx512-ncu-forward",
                   "h200-issue14/explain-2.7B/2.7B-forward-backward-bf16-sdpa-b4-ctx512-compile-max-autotune")
COMPARISONS = (
    ("h200-seed:precision=fp32", "h200-seed:precision=bf16", "h200-compare/seed-fp32-vs-bf16.md"),
    ("h200-nsys:attention=sdpa", "h200-nsys:attention=naive", "h200-compare/nsys-sdpa-vs-naive.md"),
    ("h200-findings/sweep:precision=fp32", "h200-findings/sweep:precision=bf16",
     "h200-findings/compare-fp32-vs-bf16.md"),
    ("h200-findings/attention:attention=sdpa", "h200-findings/attention:attention=naive",
     "h200-findings/compare-sdpa-vs-naive.md"),
    ("h200-issue14/five-sizes:compile=off", "h200-issue14/five-sizes:compile=default",
     "h200-issue14/compare-eager-vs-compile-default.md"),
    ("h200-issue14/five-sizes:compile=default", "h200-issue14/five-sizes:compile=max-autotune",
     "h200-issue14/compare-compile-default-vs-max-autotune.md"),
)


def rerender(calibration: bool = True) -> None:
    """Render every report in place under ./reports (the current directory is the project root)."""
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet, contextlib.redirect_stderr(io.StringIO()):
        for capture in KERNEL_CAPTURES:
            lmbench(["kernels", f"reports/{capture}"])
        for run in RUNS:
            lmbench(["report", f"reports/{run}"])
        for run in RUN_SUMMARIES:
            write_run_summary(Path("reports") / run)
        for a, b, out in COMPARISONS:
            lmbench(["compare", f"reports/{a}", f"reports/{b}", "--out", f"reports/{out}"])
    if calibration:
        with open("reports/h200-calibration/calibration.txt", "w") as out, contextlib.redirect_stdout(out):
            sys.argv = ["gate_calibration.py", "analyse", "reports/h200-calibration/pool",
                        "--out", "reports/h200-calibration"]
            runpy.run_path("benchmarks/gate_calibration.py", run_name="__main__")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-calibration", dest="calibration", action="store_false")
    args = parser.parse_args()
    rerender(args.calibration)
