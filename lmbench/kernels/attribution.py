"""Place GPU activities in lmbench's ranges by launch time: one code path for nsys and torch.profiler.

A GPU activity belongs to the innermost lmbench range that was open on the main thread when the CUDA
call that launched it was made. Launch time, not launching thread: autograd launches backward kernels
from its own worker thread, which carries none of the main thread's ranges, yet the main thread sits
inside `backward` for exactly that time.

Inputs are DataFrames in nanoseconds:
    activities  name, start, duration, launch     (one row per kernel / memcpy / memset)
    ranges      name, start, end, level           (main-thread lmbench ranges; level 0 = the step)
The result is the kernel frame described in kernels/frame.py.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from lmbench.config import LAYER_RANGE, PHASES, RANGE_NAMES, STEP_RANGES
from lmbench.kernels.frame import KERNEL_COLUMNS

STEP_RANGE = re.compile(rf"^{STEP_RANGES[1]}_(\d+)$")  # a measured step
# Every range name lmbench emits (config.RANGE_NAMES; the indexed ones with their index); other ranges in a trace
# (ProfilerStep#k, the optimizer's own record_function, emit_nvtx's op ranges) are not lmbench's and are ignored.
LMBENCH_RANGE = re.compile(r"^(?:(?:" + "|".join((*STEP_RANGES, LAYER_RANGE)) + r")_\d+|"
                           + "|".join(n for n in RANGE_NAMES if n not in (*STEP_RANGES, LAYER_RANGE)) + ")$")


def attribute_to_ranges(activities: pd.DataFrame, ranges: pd.DataFrame) -> pd.DataFrame:
    """The kernel frame of the measured steps; activities launched outside them are dropped."""
    if activities.empty or ranges.empty:
        return pd.DataFrame(columns=list(KERNEL_COLUMNS))
    placed = place_in_ranges(activities["launch"].to_numpy(), ranges)
    chosen = activities.iloc[placed.index]
    frame = pd.DataFrame({
        "name": chosen["name"].to_numpy(),
        "duration_ns": chosen["duration"].to_numpy(),
        "start_ns": chosen["start"].to_numpy(),
        "step": placed["step"].to_numpy(),
        "phase": placed["phase"].to_numpy(),
        "path": placed["path"].to_numpy(),
    })
    frame["end_ns"] = frame["start_ns"] + frame["duration_ns"]
    return frame[list(KERNEL_COLUMNS)]


def place_in_ranges(times: np.ndarray, ranges: pd.DataFrame) -> pd.DataFrame:
    """Where each time falls among lmbench's main-thread ranges (level 0 = the step): `step` (the measured step's
    index), `phase` and `path` (every range below the step, joined by '/'). Only the times inside a measured step's
    phase get a row; the index is their position in `times`. Used for kernel launches and CPU operator starts."""
    levels = range(int(ranges["level"].max()) + 1)
    names_by_level = [_enclosing(ranges[ranges["level"] == level], times) for level in levels]
    steps = pd.Series(names_by_level[0]).str.extract(STEP_RANGE.pattern)[0]
    below = names_by_level[1:]
    path = np.full(len(times), "", dtype=object)
    for names in below:
        path = np.where(names == "", path, np.where(path == "", names, path + "/" + names))
    placed = pd.DataFrame({"step": steps.to_numpy(), "phase": below[0] if below else "", "path": path})
    placed = placed[placed["step"].notna() & placed["phase"].isin(PHASES)]
    return placed.astype({"step": int})


def _enclosing(ranges: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """For each time, the name of the range (of one level, so none overlap) that contains it, or ''."""
    ranges = ranges.sort_values("start")
    starts, ends, names = (ranges[c].to_numpy() for c in ("start", "end", "name"))
    if not len(starts):
        return np.full(len(times), "", dtype=object)
    index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, None)
    inside = (times >= starts[index]) & (times <= ends[index])
    return np.where(inside, names[index], "").astype(object)


def main_thread(ranges: pd.DataFrame) -> pd.DataFrame:
    """The ranges of the thread that ran the measured steps (name, start, end, tid, ...)."""
    steps = ranges[ranges["name"].str.match(STEP_RANGE.pattern)]
    if steps.empty:
        return ranges.iloc[0:0]
    return ranges[ranges["tid"] == steps["tid"].mode().iloc[0]]


def nesting_levels(ranges: pd.DataFrame) -> pd.Series:
    """Depth of each range among the others of one thread (0 = outermost), from start/end alone."""
    return nesting(ranges)["level"]


def nesting(ranges: pd.DataFrame) -> pd.DataFrame:
    """Per range of one thread, from start/end alone: its depth among the others (`level`, 0 = outermost) and
    the index label of the range directly around it (`parent`, None at level 0)."""
    order = ranges.sort_values(["start", "end"], ascending=[True, False])
    open_ranges: list[tuple[float, object]] = []  # (end, index label), innermost last
    level, parent = {}, {}
    for index, start, end in zip(order.index, order["start"], order["end"]):
        while open_ranges and open_ranges[-1][0] <= start:
            open_ranges.pop()
        level[index] = len(open_ranges)
        parent[index] = open_ranges[-1][1] if open_ranges else None
        open_ranges.append((end, index))
    return pd.DataFrame({"level": pd.Series(level, dtype="int64"), "parent": pd.Series(parent, dtype=object)},
                        index=ranges.index)
