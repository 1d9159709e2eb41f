"""Fresh `lmbench bench` child processes: the command line, running one, and repeats merged into one record.

A configuration measured with `--repeats R` runs as R children (a Series), each storing its own record under
RUN_DIR/processes/<key>-<timestamp>/ (kept, so nothing measured is lost if the parent stops); a data-parallel one
as R torchrun jobs, each storing its record there the same way. They run one after the other, or, in a sweep with
`--interleave`, in rounds with the other configurations' (studies/sweep.py).
The parent then merges them into one record: every sample labelled with its `process`, the step-level
statistics over all measured steps, and `process_stats`, whose unit is the process (results/merge.py). The
warm-up study and `lmbench nsys` start their children through the same command line.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from lmbench.config import BenchConfig
from lmbench.errors import LmbenchError
from lmbench.measure.data_parallel import Job, run_data_parallel
from lmbench.measure.sampling import Sampling
from lmbench.results.merge import merge
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore

PROCESSES_DIR = "processes"


def child_command(config: BenchConfig, run_dir: Path, report: bool = False, python: str = sys.executable) -> list[str]:
    """`python -m lmbench bench <config> --run-dir RUN_DIR`; without `report` the child only stores its record."""
    return [python, "-m", "lmbench", "bench", *config.to_args(), "--run-dir", str(run_dir),
            *(() if report else ("--no-report",))]


def run_child(config: BenchConfig, run_dir: Path, what: str) -> Record:
    """Run one child bench into `run_dir` and return the record it stored; its failure is one LmbenchError."""
    completed = subprocess.run(child_command(config, run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    if completed.returncode:
        tail = completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "no message"
        raise LmbenchError(f"{what} failed: {tail}")
    return ResultsStore(run_dir).records()[-1]


def _children_dir(run_dir: Path, key: str) -> Path:
    return run_dir / PROCESSES_DIR / f"{key}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"


class Series:
    """One configuration's fresh processes so far: child `lmbench bench`es of `config`, or, given a data-parallel
    `job`, its torchrun jobs. Each stores its record under RUN_DIR/processes/<key>-<timestamp>/ as it ends."""

    def __init__(self, config: BenchConfig, run_dir: Path, job: Job | None, planned: int) -> None:
        self.config, self.job = config, job  # a child resolves a global batch itself: it gets `config` as given
        self.children = _children_dir(run_dir, job.key if job else config.key())
        self.records: list[Record] = []
        self.started, self.planned = 0, planned  # `planned`: how many the caller means to run, for progress lines

    @property
    def out_of_memory(self) -> bool:
        """Whether the last process ran out of memory, which ends the series."""
        return bool(self.records) and not self.records[-1].ok

    def run_next(self, on_line: Callable[[str], None] = lambda line: None) -> None:
        """Run one more process and keep its record (none on a node other than node 0 of a torchrun job: its lmbench
        process only launches this node's ranks and stores nothing)."""
        self.started += 1
        if self.job is None:
            self.records.append(run_child(self.config, self.children, f"process {self.started} of {self.config.label}"))
            return
        on_line(f"{self.config.label}: job {self.started} of {self.planned}{self.job.where}")
        record = run_data_parallel(self.job, ResultsStore(self.children), on_line)
        if record is not None:
            self.records.append(record)


def run_repeats(config: BenchConfig, sampling: Sampling, run_dir: Path, job: Job | None = None,
                on_line: Callable[[str], None] = lambda line: None) -> Record | None:
    """Measure `config` in fresh processes (child benches, or the torchrun jobs of a data-parallel `job`), at least
    `sampling.repeats`, more while a --target-ci is not met and its budget lasts; returns the merged record (not
    yet stored), or None on a node other than node 0 of a job, which stores nothing. A process that runs out of
    memory ends the repeats: its record, with the processes before it, is what is returned (on a node other than
    node 0 it is that node's one-line error, run_data_parallel). A job's count is fixed (measure/data_parallel.py
    refuses --target-ci with it): every node must launch as many. An interrupted configuration's finished processes
    stay under processes/, but --resume measures the configuration again from its first."""
    series, start, ended_by = Series(config, run_dir, job, sampling.repeats), time.perf_counter(), None
    while ended_by is None:
        series.run_next(on_line)
        if series.out_of_memory:
            ended_by = "oom"
        elif series.records:
            means = [r.mean_ms() for r in series.records]
            ended_by = sampling.ended_by(means, time.perf_counter() - start, minimum=sampling.repeats)
        elif series.started >= sampling.repeats:  # a node other than node 0: its jobs launched, nothing stored
            ended_by = "count"
    return merge_processes(series.records, sampling, ended_by) if series.records else None


def merge_processes(records: list[Record], sampling: Sampling, ended_by: str) -> Record:
    """The one record of a configuration measured in these processes (results/merge.py), saying how the repeats
    ended (`ended_by`) and the CI half-width the process means reached."""
    return merge(records, lambda means: sampling.describe(means, ended_by, unit="process"))
