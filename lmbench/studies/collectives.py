"""`lmbench collectives`: collective bandwidth over a torchrun job, stored and reported.

The lmbench process checks the job (device, backend, ranks per GPU) and holds the run directory, starts torchrun
on the worker module measure/collectives.py (measure/launch.py: launch, wait, one-line failure), then renders
collectives.md from what rank 0 stored (render/collectives.py). On a multi-node job the same command runs on every
node; node 0 holds rank 0, so the records and the report are on node 0.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Callable

from lmbench.analysis.collectives import ranks
from lmbench.measure.collectives_options import CollectivesOptions
from lmbench.errors import LmbenchError, report_of_stored
from lmbench.measure.collectives import worker_args
from lmbench.measure.distributed import check_launch
from lmbench.measure.launch import LaunchOptions, run_job, torchrun_command
from lmbench.render.collectives import write_report
from lmbench.results.collectives import CollectivesStore

WORKER = "lmbench.measure.collectives"


def run_collectives(options: CollectivesOptions, run_dir: str | Path, launch: LaunchOptions = LaunchOptions(),
                    resume: bool = False, on_line: Callable[[str], None] = lambda line: None) -> Path | None:
    """Measure `options` on a torchrun job of `launch` into `run_dir` and write its report; returns the report's
    path, or None on a node other than node 0 (which has the records). Worker progress lines go to `on_line`."""
    device, backend, nproc = check_launch(launch, options.device)
    sizes = options.size_list(device.type)
    resolved = dataclasses.replace(options, device=device.type, sizes=",".join(map(str, sizes)))
    store = CollectivesStore(run_dir)
    with store.claim():
        child = [sys.executable, "-m", WORKER, *worker_args(resolved, backend, launch.timeout, store.run_dir, resume)]
        on_line(f"{len(resolved.op_list())} collectives x {len(sizes)} sizes, {ranks(nproc)} per node x {launch.nnodes} "
                f"node(s), {backend} on {device.type}, {options.warmup} warm-up + {options.steps} timed steps each")
        try:
            run_job(torchrun_command(launch, nproc, child), "lmbench collectives", launch.job_timeout, on_line)
        except LmbenchError as e:  # Interrupted too: say what was kept and how to go on
            kept = len(store.records()) if store.path.exists() else 0
            if kept:
                raise type(e)(f"{e}; {kept} records kept in {store.path}, continue with --resume --run-dir "
                              f"{store.run_dir}") from None
            raise
        if launch.node_rank != 0:
            return None
        with report_of_stored(store.path):
            return write_report(store.run_dir)
