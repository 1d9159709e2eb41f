"""Run configurations into a results store: one (`bench`) or a cartesian product (`sweep`).

Each configuration runs in this process, or with `Sampling(repeats=R)` in R fresh ones (measure/processes.py), or
with `parallel` ddp or fsdp on the ranks of a torchrun job that `launch` describes (measure/data_parallel.py), R of
them with `Sampling(repeats=R)`. A configuration's R processes run one after the other, or, with
`Sampling(interleave=True)`, in R rounds of one process of each configuration: a comparison across processes then
does not also compare early with late in the sweep.
Each configuration's record is appended the moment its last process finishes, so an interrupted sweep keeps all
it measured (the processes of unfinished configurations under processes/); `resume=True` skips configurations
whose key the store already holds.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from lmbench.config import BenchConfig
from lmbench.measure.environment import check_runnable
from lmbench.errors import LmbenchError
from lmbench.measure.data_parallel import Job, plan_jobs, run_data_parallel
from lmbench.measure.harness import measure
from lmbench.measure.launch import LaunchOptions
from lmbench.measure.recording import build_record
from lmbench.measure.processes import Series, merge_processes, run_repeats
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore
from lmbench.measure.sampling import Sampling


@dataclass(frozen=True)
class Sweep:
    """A base configuration and, per swept field, the values to take; configs() is their product."""

    base: BenchConfig
    axes: dict[str, tuple[Any, ...]]

    def configs(self) -> list[BenchConfig]:
        names = list(self.axes)
        configs = [
            dataclasses.replace(self.base, **dict(zip(names, values)))
            for values in itertools.product(*(self.axes[n] for n in names))
        ]
        for config in configs:  # refuse an impossible combination before measuring anything
            check_runnable(config)
        return configs


def plan_sweep(configs: Sequence[BenchConfig], sampling: Sampling, launch: LaunchOptions | Sequence[LaunchOptions],
               resume: bool) -> list[tuple[BenchConfig, Job]]:
    """(configuration, its job) under each launch (several: a list of --nproc-per-node, each data-parallel
    configuration at each rank count, one after the other), all checked before anything is measured
    (measure/data_parallel.py). A configuration in one process has one job whatever the launches."""
    launches = [launch] if isinstance(launch, LaunchOptions) else list(launch)
    if resume and any(one.nnodes > 1 for one in launches):
        raise LmbenchError("--resume reads the stored records, which only node 0 holds: not with --nnodes")
    planned = [plan_jobs(configs, sampling, one) for one in launches]
    return [(config, job) for config, *jobs in zip(configs, *planned)
            for job in (jobs if config.parallel != "none" else jobs[:1])]  # one process: the launches don't apply


def check_one_configuration(sampling: Sampling) -> None:
    """Refuse what only orders several configurations (bench and run_one measure one)."""
    if sampling.interleave:
        raise LmbenchError("--interleave orders the processes of several configurations: use it with lmbench sweep")


def run_one(config: BenchConfig, store: ResultsStore, on_step: Callable | None = None,
            sampling: Sampling = Sampling(), profiler: str | None = None, launch: LaunchOptions = LaunchOptions(),
            on_line: Callable[[str], None] = lambda line: None) -> Record | None:
    """Measure one configuration (in this process, in fresh ones with `sampling.repeats` > 1, or with
    `config.parallel` on a torchrun job, `sampling.repeats` of them) and append its record to the store; None on a
    node other than node 0 of a job, which stores nothing. `on_step` and `profiler` are for runs in this process
    (lmbench profile); `on_line` receives a job's progress lines."""
    check_one_configuration(sampling)
    [job] = plan_jobs([config], sampling, launch)
    return run_job(config, job, store, sampling, on_step, profiler, on_line)


def run_job(config: BenchConfig, job: Job, store: ResultsStore, sampling: Sampling = Sampling(),
            on_step: Callable | None = None, profiler: str | None = None,
            on_line: Callable[[str], None] = lambda line: None) -> Record | None:
    """run_one of a configuration already planned (`job`, from plan_jobs)."""
    if sampling.in_processes:  # each child resolves a global batch itself: it gets `config` as given
        record = run_repeats(config, sampling, store.run_dir, job if job.launch else None, on_line)
        if record is None:  # a node other than node 0
            return None
    elif job.launch is not None:
        return run_data_parallel(job, store, on_line)  # its rank 0 stores the record
    else:
        start = time.perf_counter()
        measurement = measure(job.config, on_step=on_step, sampling=sampling, profiler=profiler)
        record = build_record(job.config, measurement, wall_s=time.perf_counter() - start)
    store.append(record)
    return record


def run_sweep(
    configs: Sequence[BenchConfig],
    store: ResultsStore,
    resume: bool = False,
    sampling: Sampling = Sampling(),
    on_event: Callable[[str, BenchConfig], None] = lambda event, config: None,
    launch: LaunchOptions | Sequence[LaunchOptions] = LaunchOptions(),
    on_line: Callable[[str], None] = lambda line: None,
) -> list[Record]:
    """Measure each configuration in turn; with `resume`, skip those already stored. Data-parallel ones run on the
    torchrun job `launch` describes (or on each of several, e.g. one rank and then two); on a node other than node 0
    they return no record.

    `on_event(event, config)` reports "start", "done" or "skip" for each job's configuration (progress bars).
    """
    return run_planned(plan_sweep(configs, sampling, launch, resume), store, resume, sampling, on_event, on_line)


def run_planned(pairs: Sequence[tuple[BenchConfig, Job]], store: ResultsStore, resume: bool = False,
                sampling: Sampling = Sampling(),
                on_event: Callable[[str, BenchConfig], None] = lambda event, config: None,
                on_line: Callable[[str], None] = lambda line: None) -> list[Record]:
    """run_sweep of the (configuration, job) pairs plan_sweep returned (the CLI plans first, to refuse bad input
    before the run directory is made and to size its progress bar)."""
    done = store.done_keys() if resume else set()
    if sampling.interleave:
        for config, job in pairs:
            if job.key in done:
                on_event("skip", config)
        return run_interleaved([(c, j) for c, j in pairs if j.key not in done], store, sampling, on_event, on_line)
    records = []
    for config, job in pairs:
        if job.key in done:
            on_event("skip", config)
            continue
        on_event("start", config)
        record = run_job(config, job, store, sampling, on_line=on_line)
        if record is not None:
            records.append(record)
        on_event("done", config)
    return records


def run_interleaved(pending: Sequence[tuple[BenchConfig, Job]], store: ResultsStore, sampling: Sampling,
                    on_event: Callable[[str, BenchConfig], None] = lambda event, config: None,
                    on_line: Callable[[str], None] = lambda line: None) -> list[Record]:
    """The configurations' `sampling.repeats` processes in rounds: one of each configuration per round, in sweep
    order and reversed every other round (A B, B A, A B, ...), so that a drift over the sweep falls on each alike.
    `on_event` also gets "process" after each process. A configuration's merged record is stored when its last
    process ends, or when one runs out of memory (it then leaves the later rounds). If the sweep stops early (a
    failure, Ctrl-C), each unfinished configuration's processes so far are stored as its record, ended by
    "interrupted", before the error goes on. Every node of a torchrun job walks the same order. Returns the records
    in sweep order."""
    series = {job.key: Series(config, store.run_dir, job if job.launch else None, sampling.repeats)
              for config, job in pending}
    stored: dict[str, Record] = {}

    def finish(config: BenchConfig, key: str, ended_by: str) -> None:
        runs = series.pop(key)
        if runs.records:  # none on a node other than node 0, which stores nothing
            stored[key] = merge_processes(runs.records, sampling, ended_by)
            store.append(stored[key])
        on_event("done", config)

    try:
        for round_index in range(sampling.repeats):
            for config, job in pending if round_index % 2 == 0 else pending[::-1]:
                if job.key not in series:  # ran out of memory in an earlier round
                    continue
                on_event("start", config)
                series[job.key].run_next(on_line)
                on_event("process", config)
                if series[job.key].out_of_memory or round_index == sampling.repeats - 1:
                    finish(config, job.key, "oom" if series[job.key].out_of_memory else "count")
    except BaseException:  # noqa: B036 -- what finished is stored, then the failure or Ctrl-C goes on as it came
        for config, job in pending:
            if job.key in series:
                finish(config, job.key, "interrupted")
        raise
    return [stored[job.key] for _, job in pending if job.key in stored]
