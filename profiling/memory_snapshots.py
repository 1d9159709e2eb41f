"""CUDA allocator snapshots and the peak-memory table for one size over contexts, modes and precisions.

usage: python profiling/memory_snapshots.py RUN_DIR [--size 2.7B] [--ctx 128,256,512] [--warmup 1] [--steps 2]

Runs every (ctx, mode, precision) of forward / train-step x fp32 / bf16 in one process (one model build
each, no interpreter restarts), each under `lmbench profile --memory-snapshot --schedule-active 1`:
RUN_DIR/<capture>/memory_snapshot.pickle opens in pytorch.org/memory_viz. The records go to
RUN_DIR/results.jsonl and RUN_DIR/report.md gains the peak-memory table with the analytic sizes of the
key tensors. Configurations already stored are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from lmbench.config import BenchConfig
from lmbench.measure.environment import check_runnable
from lmbench.analysis.groups import capture_name
from lmbench.profilers.torch_profiler import ProfileOptions, profiling
from lmbench.render.timing_report import write_report
from lmbench.results.store import ResultsStore
from lmbench.studies.sweep import run_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--size", default="2.7B")
    parser.add_argument("--ctx", default="128,256,512")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    store = ResultsStore(args.run_dir)
    done = store.done_keys()
    options = ProfileOptions(memory_snapshot=True, schedule_active=1)
    for ctx, mode, precision in itertools.product([int(c) for c in args.ctx.split(",")], ("forward", "train-step"),
                                                  ("fp32", "bf16")):
        config = BenchConfig(size=args.size, ctx=ctx, mode=mode, precision=precision, warmup=args.warmup,
                             steps=args.steps, annotate="phases")
        if config.key() in done:
            continue
        device = check_runnable(config)
        with profiling(options, config, args.run_dir / capture_name(config), device) as on_step:
            record = run_one(config, store, on_step=on_step)
        print(f"{config.label} ctx {ctx} {mode} {precision}: {record['status']}", flush=True)
    print(write_report(args.run_dir).read_text())


if __name__ == "__main__":
    main()
