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

    def __init__(self, config: BenchConfig, run_dir: Path, job: Job | None = None, planned: int | None = None) -> None:
        self.config, self.job = config, job  # a child resolves a global batch itself: it gets `config` as given
        self.children = _children_dir(run_dir, job.key if job else config.key())
        self.records: list[Record] = []
        self.started, self.planned = 0, planned  # `planned`: how many the caller means to run, for progress lines

    @property
    def out_of_memory(self) -> bool:
        """Whether the last process ran out of memory, which ends the series."""
        return bool(self.records) and not self.records[-1].ok

    def run_next(self, on_line: Callable[[str], None] = lambda line: None) -> Record | None:
        """Run one more process and keep its record; None on a node other than node 0 of a torchrun job (its
        lmbench process only launches this node's ranks and stores nothing)."""
        self.started += 1
        if self.job is None:
            record = run_child(self.config, self.children, f"process {self.started} of {self.config.label}")
        else:
            on_line(f"{self.config.label}: job {self.started}{f' of {self.planned}' if self.planned else ''}{self.job.where}")
            record = run_data_parallel(self.job, ResultsStore(self.children), on_line)
            if record is None:
                return None
        self.records.append(record)
        return record


def run_repeats(config: BenchConfig, sampling: Sampling, run_dir: Path,
                on_process: Callable[[int], None] = lambda index: None) -> Record:
    """Measure `config` in fresh processes, at least `sampling.repeats`, more while a --target-ci is not met
    and its budget lasts; returns the merged record (not yet stored). A child that runs out of memory ends
    the repeats: its record, with the processes before it, is what is returned."""
    series, start, ended_by = Series(config, run_dir), time.perf_counter(), None
    while ended_by is None:
        on_process(len(series.records))
        series.run_next()
        if series.out_of_memory:
            ended_by = "oom"
            break
        means = [r.mean_ms() for r in series.records]
        ended_by = sampling.ended_by(means, time.perf_counter() - start, minimum=sampling.repeats)
    return merge_processes(series.records, sampling, ended_by)


def run_job_repeats(job: Job, sampling: Sampling, run_dir: Path,
                    on_line: Callable[[str], None] = lambda line: None) -> Record | None:
    """Run the data-parallel `job` as `sampling.repeats` torchrun jobs, one after the other, and return their merged
    record (not yet stored), or None on a node other than node 0, which stores nothing. The count is fixed (no
    --target-ci): every node runs this loop and must launch as many jobs. A job that runs out of memory ends the
    repeats, as in run_repeats; on a node other than node 0 it is that node's one-line error (run_data_parallel), so
    its sweep ends. An interrupted configuration's finished jobs stay under processes/, but --resume measures the
    configuration again from its first job."""
    series = Series(job.config, run_dir, job, sampling.repeats)
    for _ in range(sampling.repeats):
        series.run_next(on_line)
        if series.out_of_memory:
            break
    ended_by = "oom" if series.out_of_memory else "count"
    return merge_processes(series.records, sampling, ended_by) if series.records else None


def merge_processes(records: list[Record], sampling: Sampling, ended_by: str) -> Record:
    """The one record of a configuration measured in these processes (results/merge.py), saying how the repeats
    ended (`ended_by`) and the CI half-width the process means reached."""
    return merge(records, lambda means: sampling.describe(means, ended_by, unit="process"))
