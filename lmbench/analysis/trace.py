"""Read torch.profiler Chrome traces (plain or gzip JSON) into DataFrames, streaming.

A trace is parsed event by event (ijson's C backend) and only what the analysis needs is kept, as
columns: GPU activities (kernels, memcpy, memset), the CUDA calls that launched them, lmbench's ranges
(user annotations) and CPU operators. Times are converted from the trace's microseconds to integer
nanoseconds, the unit of the kernel frame shared with the nsys path.
"""

from __future__ import annotations

import gzip
import sys
from dataclasses import dataclass
from pathlib import Path

import ijson
import pandas as pd

from lmbench.analysis.attribution import LMBENCH_RANGE, attribute_to_ranges, main_thread, nesting_levels
from lmbench.errors import LmbenchError

GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
LAUNCH_CATEGORIES = ("cuda_runtime", "cuda_driver")


@dataclass
class Trace:
    """The parts of one trace the analysis uses; all times in ns."""

    path: Path
    gpu: pd.DataFrame  # name, start, duration, correlation, external_id
    launches: pd.DataFrame  # name, start, correlation, tid
    ranges: pd.DataFrame  # name, start, end, tid (user annotations)
    ops: pd.DataFrame  # name, start, duration, tid, external_id (CPU operators)


def _open(path: Path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_trace(path: Path) -> Trace:
    """Parse a Chrome trace; a missing, truncated or non-trace file is a one-line LmbenchError naming it."""
    columns: dict[str, dict[str, list]] = {
        kind: {} for kind in ("gpu", "launches", "ranges", "ops")}
    names: dict[str, str] = {}  # one string object per distinct name keeps millions of events small

    def add(kind: str, **values: object) -> None:
        table = columns[kind]
        for key, value in values.items():
            table.setdefault(key, []).append(value)

    try:
        with _open(path) as stream:
            for event in ijson.items(stream, "traceEvents.item", use_float=True):
                if event.get("ph") != "X":
                    continue
                category, args = event.get("cat"), event.get("args") or {}
                name = event.get("name", "")
                name = names.setdefault(name, sys.intern(name) if len(name) < 200 else name)
                start, duration = round(event["ts"] * 1000), round(event.get("dur", 0) * 1000)
                if category in GPU_CATEGORIES:
                    add("gpu", name=name, start=start, duration=duration, correlation=args.get("correlation"),
                        external_id=args.get("External id"))
                elif category in LAUNCH_CATEGORIES:
                    add("launches", name=name, start=start, correlation=args.get("correlation"), tid=event.get("tid"))
                elif category == "user_annotation":
                    add("ranges", name=name, start=start, end=start + duration, tid=event.get("tid"))
                elif category == "cpu_op":
                    add("ops", name=name, start=start, duration=duration, tid=event.get("tid"),
                        external_id=args.get("External id"))
    except FileNotFoundError:
        raise LmbenchError(f"no trace file at {path}") from None
    except (ijson.JSONError, ijson.IncompleteJSONError, EOFError, OSError, KeyError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise LmbenchError(f"{path} is not a readable torch.profiler trace ({reason})") from None
    frames = {kind: pd.DataFrame(table) for kind, table in columns.items()}
    if frames["ranges"].empty and frames["ops"].empty:
        raise LmbenchError(f"{path} holds no profiler events (traceEvents is empty or missing)")
    return Trace(path, frames["gpu"], frames["launches"], frames["ranges"], frames["ops"])


def lmbench_ranges(trace: Trace) -> pd.DataFrame:
    """lmbench's ranges on the main thread with their nesting level (0 = the step): name, start, end,
    level, tid. Other user annotations (ProfilerStep#k, Optimizer.step#...) are left out."""
    ranges = trace.ranges
    if ranges.empty:
        return pd.DataFrame(columns=["name", "start", "end", "level", "tid"])
    mine = main_thread(ranges[ranges["name"].str.match(LMBENCH_RANGE.pattern)]).copy()
    if mine.empty:
        return pd.DataFrame(columns=["name", "start", "end", "level", "tid"])
    mine["level"] = nesting_levels(mine)
    step_level = mine.loc[mine["name"].str.startswith("measured_"), "level"].min()
    mine["level"] -= step_level
    return mine[mine["level"] >= 0][["name", "start", "end", "level", "tid"]].reset_index(drop=True)


def kernel_frame(trace: Trace) -> pd.DataFrame:
    """The kernel frame (analysis/kernels.py) of the traced measured steps."""
    if trace.gpu.empty:
        return attribute_to_ranges(pd.DataFrame(), lmbench_ranges(trace))
    launches = trace.launches[["correlation", "start"]].rename(columns={"start": "launch"})
    activities = trace.gpu.merge(launches, on="correlation", how="inner")
    return attribute_to_ranges(activities[["name", "start", "duration", "launch"]], lmbench_ranges(trace))


def top_operators(trace: Trace, n: int = 15) -> pd.DataFrame:
    """CPU operators by self device time: the GPU time of the kernels each operator launched itself
    (a kernel's External id names the innermost operator around its launch), per traced step."""
    columns = ["operator", "kernels_per_step", "device_ms_per_step", "share_pct"]
    if trace.gpu.empty or trace.ops.empty:
        return pd.DataFrame(columns=columns)
    steps = max(int(lmbench_ranges(trace)["name"].str.match(r"^measured_\d+$").sum()), 1)
    innermost = trace.ops.sort_values("duration").drop_duplicates("external_id")[["external_id", "name"]]
    joined = trace.gpu.merge(innermost.rename(columns={"name": "operator"}), on="external_id", how="inner")
    table = joined.groupby("operator")["duration"].agg(["count", "sum"]).sort_values("sum", ascending=False)
    total = trace.gpu["duration"].sum()
    top = table.head(n)
    return pd.DataFrame({
        "operator": top.index,
        "kernels_per_step": top["count"].to_numpy() / steps,
        "device_ms_per_step": top["sum"].to_numpy() / steps / 1e6,
        "share_pct": 100 * top["sum"].to_numpy() / total,
    })
