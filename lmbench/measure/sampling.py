"""How much to measure: fresh processes per configuration, and when to stop.

Steps within one process agree more than separate processes of the same configuration do (allocator
layout, kernel selection, clocks and the host's state are fixed once per process), so a mean from one
process carries an uncertainty that its step-level CI does not show. `repeats` runs each configuration in
that many fresh processes (measure/processes.py) and makes the process the unit of the CI. `target_ci` keeps
measuring, in steps or, with repeats, in processes, until the 95% CI half-width of the mean is at most that
share of the mean, or `max_time` runs out; the record says which ended it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from lmbench.options import check_types, option, require_positive
from lmbench.errors import LmbenchError
from lmbench.results.stats import summarize

DEFAULT_MAX_TIME_S = 300.0  # the budget of a --target-ci run when --max-time is not given
MAX_REPEATS = 10_000  # each is a process of its own, seconds at the least: more would never end


@dataclass(frozen=True)
class Sampling:
    """Processes per configuration and the stopping rule."""

    repeats: int = option(1, "fresh processes per configuration; with 2 or more the process is the unit of the "
                             "mean's CI (a separate child `lmbench bench` each)")
    target_ci: float | None = option(None, "keep measuring (steps, or processes with --repeats) until the 95% CI "
                                           "half-width is at most this % of the mean, e.g. 1%", percent=True)
    max_time: float | None = option(None, f"time budget in seconds of a --target-ci run per configuration "
                                          f"(default {DEFAULT_MAX_TIME_S:g})")
    interleave: bool = option(False, "lmbench sweep only: with --repeats, run the processes in rounds, one of each "
                                     "configuration per round, the order reversed every other round, so that drift "
                                     "during the sweep (clocks, heat, the host) falls on every configuration alike; "
                                     "a record is stored after its last round (stopped early: the processes so far)")

    def __post_init__(self) -> None:
        check_types(self)
        require_positive("repeats", self.repeats)
        if self.repeats > MAX_REPEATS:
            raise LmbenchError(f"repeats must be at most {MAX_REPEATS:,} fresh processes, got {self.repeats}")
        if self.target_ci is not None and not (math.isfinite(self.target_ci) and 0 < self.target_ci < 100):
            raise LmbenchError(f"--target-ci must be a percentage between 0 and 100, got {self.target_ci}")
        if self.max_time is not None:
            if self.target_ci is None:
                raise LmbenchError("--max-time bounds a --target-ci run; give --target-ci too")
            if not (math.isfinite(self.max_time) and self.max_time > 0):
                raise LmbenchError(f"--max-time must be a positive number of seconds, got {self.max_time}")
        if self.interleave and self.repeats < 2:
            raise LmbenchError("--interleave orders the fresh processes of --repeats 2 or more; give --repeats")
        if self.interleave and self.target_ci is not None:
            raise LmbenchError("--interleave runs every configuration's --repeats processes in rounds; --target-ci "
                               "would stop each configuration on its own")

    @property
    def in_processes(self) -> bool:
        """Whether each configuration runs in child processes (else in this one, as a single process)."""
        return self.repeats > 1

    @property
    def budget_s(self) -> float | None:
        return None if self.target_ci is None else (self.max_time or DEFAULT_MAX_TIME_S)

    def ended_by(self, values: Sequence[float], elapsed_s: float, minimum: int) -> str | None:
        """Why measuring stops after these `values` (step totals, or process means), or None to go on:
        "count" when there is no target and `minimum` values exist, "target" when the CI is tight enough,
        "max-time" when the budget is spent. Nothing stops before `minimum` values."""
        if len(values) < minimum:
            return None
        if self.target_ci is None:
            return "count"
        if len(values) > 1 and summarize(values).ci_half_width_pct <= self.target_ci:
            return "target"
        return "max-time" if elapsed_s >= self.budget_s else None

    def describe(self, values: Sequence[float], ended_by: str, unit: str) -> dict[str, Any]:
        """What the record keeps about how measuring ended."""
        half = summarize(values).ci_half_width_pct if len(values) > 1 else math.nan
        return {"repeats": self.repeats, "unit": unit, "count": len(values), "target_ci_pct": self.target_ci,
                "max_time_s": self.budget_s, "ended_by": ended_by, "ci_half_width_pct": half,
                "interleaved": self.interleave}
