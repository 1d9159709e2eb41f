"""A sweep's progress on stderr: on a terminal, a bar with the configurations done, the steps done and an ETA;
in a log or a pipe, one plain line per configuration instead (nothing that redraws).

Steps are counted a configuration at a time, as its planned warm-up + measured steps times its processes (a
--target-ci run may measure more), when it ends: the measured loop reports nothing while it runs, so progress
puts no work inside a timed region, and with --repeats the steps run in child processes the parent does not see
step by step.
"""

from __future__ import annotations

import time
from typing import Sequence

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from lmbench.config import BenchConfig


class SweepProgress:
    """Progress over `configs`, each run in `processes` processes; `on_event` is run_sweep's callback."""

    def __init__(self, configs: Sequence[BenchConfig], processes: int) -> None:
        self.console = Console(stderr=True, soft_wrap=True)  # never wrapped: a name stays whole in a log
        self.total, self.done, self.processes = len(configs), 0, processes
        self.steps, self.steps_total = 0, sum(self._steps(c) for c in configs)
        self.by_process = False  # set by the first "process" event (--interleave)
        self.start = time.perf_counter()
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("configs ·"), TextColumn("{task.fields[steps]}"), TimeElapsedColumn(),
                            TextColumn("eta"), TimeRemainingColumn(), console=self.console, transient=False,
                            disable=not self.console.is_terminal)  # elsewhere the plain lines are the progress
        self.task = self.bar.add_task("sweep", total=self.total, steps=self._steps_text())

    def _steps(self, config: BenchConfig) -> int:
        return (config.warmup + config.steps) * self.processes

    def _steps_text(self) -> str:
        return f"{self.steps}/{self.steps_total} steps"

    def on_event(self, event: str, config: BenchConfig) -> None:
        """run_sweep's "start", "done" or "skip" for `config` (a skipped configuration leaves the steps to run), and
        with --interleave "process" as each of its processes ends: their steps are counted then, not at "done"."""
        name = f"{config.label} {config.mode} {config.precision} ctx {config.ctx}" + (
            f" {config.parallel}" if config.parallel != "none" else "")
        if event == "skip":
            self.steps_total -= self._steps(config)
        elif event == "process":
            self.by_process = True
            self.steps += config.warmup + config.steps
        elif event == "done" and not self.by_process:
            self.steps += self._steps(config)
        if event not in ("start", "process"):
            self.done += 1
            self.bar.advance(self.task)
            if not self.console.is_terminal:
                self.console.print(f"sweep: {self.done}/{self.total} {event} {name}; {self._steps_text()} "
                                   f"({time.perf_counter() - self.start:.0f} s)")
        self.bar.update(self.task, description=name, steps=self._steps_text())

    def on_line(self, line: str) -> None:
        """A data-parallel job's progress line, printed above the bar."""
        self.console.print(line, markup=False, highlight=False)

    def __enter__(self) -> SweepProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()
