"""`lmbench profile`'s measurement: one process under torch.profiler, or a data-parallel job with every rank's steps
under it, one trace per rank.

For a job the lmbench process (`run_profiled`) launches the job exactly as `bench` does (measure/data_parallel.py's
run_data_parallel), with this module as the ranks' worker and the profile options as its arguments. Each rank
(`python -m lmbench.profilers.data_parallel_profile ... --profile JSON --capture DIR`) runs data_parallel's
run_rank with its steps wrapped in `profiling(...)` on the same schedule as one process, and writes its traces into
the one capture directory as `rank{N}.*.pt.trace.json.gz`; torch.profiler puts the process group's backend, rank
and world size in each trace's `distributedInfo`, which the kernel report reads to pair every rank with its trace.
Rank 0 stores the job's record (profiler "torch.profiler") as under `bench`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import torch

from lmbench.config import BenchConfig, ProfileOptions
from lmbench.measure.data_parallel import Job, run_data_parallel, run_rank, worker_parser
from lmbench.measure.distributed import worker_main
from lmbench.profilers.torch_profiler import profiling
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore
from lmbench.studies.sweep import run_one

WORKER = "lmbench.profilers.data_parallel_profile"
PROFILER = "torch.profiler"


def run_profiled(job: Job, store: ResultsStore, options: ProfileOptions, capture: Path, device: torch.device,
                 on_line: Callable[[str], None] = lambda line: None) -> Record | None:
    """Measure `job` into `store` under torch.profiler, its traces into `capture`: in this process on `device`, or on
    torchrun with every rank profiled. The stored record; None on a node other than node 0 of a job. The options
    were checked by the caller (check_profilable, the schedule), before its run directory was made."""
    if job.launch is None:
        with profiling(options, job.config, capture, device) as on_step:
            return run_one(job.config, store, on_step=on_step, profiler=PROFILER)
    worker = (WORKER, "--profile", json.dumps(dataclasses.asdict(options)), "--capture", str(capture))
    return run_data_parallel(job, store, on_line, worker)


def main(argv: list[str] | None = None) -> None:
    parser = worker_parser(WORKER, "profile")
    parser.add_argument("--profile", required=True, help="ProfileOptions as JSON")
    parser.add_argument("--capture", type=Path, required=True, help="the directory every rank writes its traces to")
    args = parser.parse_args(argv)
    config, options = BenchConfig(**json.loads(args.config)), ProfileOptions(**json.loads(args.profile))
    worker_main(lambda: run_rank(
        config, args.backend, args.timeout, args.run_dir, profiler=PROFILER,
        around=lambda rank, device: profiling(options, config, args.capture, device, worker_name=f"rank{rank}")))


if __name__ == "__main__":
    main()
