"""Run configurations into a results store: one (`bench`) or a cartesian product (`sweep`).

Each configuration runs in this process, or with `Sampling(repeats=R)` in R fresh ones (measure/processes.py).
Each configuration's record is appended the moment it finishes, so an interrupted sweep keeps all
it measured; `resume=True` skips configurations whose key the store already holds.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from lmbench.config import BenchConfig
from lmbench.measure.environment import check_runnable
from lmbench.measure.harness import measure
from lmbench.measure.recording import build_record
from lmbench.measure.processes import run_repeats
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


def run_one(config: BenchConfig, store: ResultsStore, on_step: Callable | None = None,
            sampling: Sampling = Sampling(), profiler: str | None = None) -> Record:
    """Measure one configuration (in this process, or in fresh ones with `sampling.repeats` > 1) and append its
    record to the store. `on_step` and `profiler` are for runs in this process (lmbench profile)."""
    if sampling.in_processes:
        record = run_repeats(config, sampling, store.run_dir)
    else:
        start = time.perf_counter()
        measurement = measure(config, on_step=on_step, sampling=sampling, profiler=profiler)
        record = build_record(config, measurement, wall_s=time.perf_counter() - start)
    store.append(record)
    return record


def run_sweep(
    configs: Sequence[BenchConfig],
    store: ResultsStore,
    resume: bool = False,
    sampling: Sampling = Sampling(),
    on_event: Callable[[str, BenchConfig], None] = lambda event, config: None,
) -> list[Record]:
    """Measure each configuration in turn; with `resume`, skip those already stored.

    `on_event(event, config)` reports "start", "done" or "skip" for each configuration (progress bars).
    """
    done = store.done_keys() if resume else set()
    records = []
    for config in configs:
        if config.key() in done:
            on_event("skip", config)
            continue
        on_event("start", config)
        records.append(run_one(config, store, sampling=sampling))
        on_event("done", config)
    return records
